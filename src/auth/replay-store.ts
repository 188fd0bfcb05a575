/**
 * Replay protection: one interface for every proof batu accepts only once. Three stores stand behind it,
 * chosen by how long a proof could be replayed:
 * - `WindowedNonces`: nonces kept in memory for a while (forwarded calls, join proofs). A proof is
 *   refused anyway once older than its skew bound, so a nonce need only outlive that window.
 * - `IncreasingCounters`: per signer, the last counter accepted (heartbeats: `sent_at` is their nonce,
 *   and a heartbeat must be newer than the last one, not merely unseen).
 * - `NonceRepo` (auth/nonce-repo.ts): renters' DBC nonces, in SQLite, single-use forever.
 */

/** Proofs already accepted, by key. */
export interface ReplayStore<K> {
  /** Records every key as used, all or none; false (nothing recorded) when any was used before. */
  consume(keys: readonly K[], now: Date): boolean;
}

/**
 * A store that can also say, without recording, whether a key was used: so a replay is refused before
 * its (costly) signature is checked, and a proof that then fails its check burns nothing.
 */
export interface ReplayWindow<K> extends ReplayStore<K> {
  /** True when the key was used (and is still remembered). */
  seen(key: K, now: Date): boolean;
}

/** Nonces remembered for `retainMs` after their use, in memory (a restart forgets them: they are stale by then). */
export class WindowedNonces implements ReplayWindow<string> {
  // nonce → when it may be forgotten (ms); insertion order is expiry order, as the clock only moves on.
  private readonly expiries = new Map<string, number>();

  constructor(readonly retainMs: number) {}

  seen(nonce: string, now: Date): boolean {
    this.prune(now.getTime());
    return this.expiries.has(nonce);
  }

  consume(nonces: readonly string[], now: Date): boolean {
    const nowMs = now.getTime();
    this.prune(nowMs);
    if (nonces.some((n) => this.expiries.has(n))) return false;
    for (const n of nonces) this.expiries.set(n, nowMs + this.retainMs);
    return true;
  }

  /** Nonces remembered now. */
  get size(): number {
    return this.expiries.size;
  }

  private prune(nowMs: number): void {
    // Oldest first: stop at the first one still kept, not a walk over all of them.
    for (const [nonce, expires] of this.expiries) {
      if (expires >= nowMs) break;
      this.expiries.delete(nonce);
    }
  }
}

/** A signer's counter (a timestamp): accepted only when greater than the last one accepted from it. */
export interface SignerCounter {
  signer: string;
  counter: number;
}

/** Per signer, the greatest counter accepted, in memory: any counter not above it counts as used. */
export class IncreasingCounters implements ReplayWindow<SignerCounter> {
  private readonly last = new Map<string, number>();

  seen(key: SignerCounter): boolean {
    return key.counter <= (this.last.get(key.signer) ?? -1);
  }

  consume(keys: readonly SignerCounter[]): boolean {
    if (keys.some((k) => this.seen(k))) return false;
    for (const k of keys) this.last.set(k.signer, k.counter);
    return true;
  }

  /** Forgets a signer (a removed member): its next counter starts afresh. */
  forget(signer: string): void {
    this.last.delete(signer);
  }
}
