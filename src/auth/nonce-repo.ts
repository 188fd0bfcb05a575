import { prepared, type Db } from "../store/db.js";
import { publicKeyHex } from "./signature.js";
import type { ReplayStore } from "./replay-store.js";

export { MAX_NONCE_LENGTH } from "../api/v1/request.js";

export interface NonceUse {
  /** The signer's 32-byte public key. */
  signer: Uint8Array;
  nonce: string;
}

/**
 * Renters' used nonces, kept in SQLite (DBC forgets them on restart) while their renter may use one
 * of the nodes and for the rental retention after (`prune`, run by the rental expiry): the persisted
 * `ReplayStore` (auth/replay-store.ts), unlike the windowed in-memory ones of calls between agents. Keyed by (signer public key,
 * nonce): a signature binds its signer, so that is all replay protection needs; the key rather than
 * the address string means one wallet under two SS58 prefixes is still one signer; and one renter's
 * choice of nonce can never lock another out, nor stop co-signers of a multisig signing one challenge.
 */
export class NonceRepo implements ReplayStore<NonceUse> {
  constructor(private readonly db: Db) {}

  /** Records every nonce as used, all or none. False (nothing recorded) when any was used before. */
  consume(uses: readonly NonceUse[], now: Date): boolean {
    const at = now.toISOString();
    const insert = prepared(this.db, "INSERT OR IGNORE INTO used_nonces (signer, nonce, used_at) VALUES (?, ?, ?)");
    const run = this.db.transaction(() => {
      for (const u of uses) {
        if (insert.run(publicKeyHex(u.signer), u.nonce, at).changes === 0) throw new NonceReplay();
      }
    });
    try {
      run();
      return true;
    } catch (e) {
      if (e instanceof NonceReplay) return false;
      throw e;
    }
  }

  /**
   * Forgets the nonces of every signer not in `keep` (public keys, 64 hex; undefined: keeps every
   * signer), and each kept signer's oldest past its newest `cap`. Returns how many were forgotten.
   */
  prune(keep: ReadonlySet<string> | undefined, cap: number): number {
    const run = this.db.transaction((): number => {
      let dropped =
        keep === undefined
          ? 0
          : prepared(this.db, "DELETE FROM used_nonces WHERE signer NOT IN (SELECT value FROM json_each(?))").run(JSON.stringify([...keep])).changes;
      const over = prepared(this.db, "SELECT signer FROM used_nonces GROUP BY signer HAVING COUNT(*) > ?").all(cap) as Array<{ signer: string }>;
      const dropOldest = prepared(
        this.db,
        `DELETE FROM used_nonces WHERE signer = ? AND nonce IN
           (SELECT nonce FROM used_nonces WHERE signer = ? ORDER BY used_at DESC, nonce DESC LIMIT -1 OFFSET ?)`,
      );
      for (const { signer } of over) dropped += dropOldest.run(signer, signer, cap).changes;
      return dropped;
    });
    return run();
  }

  /** How many nonces are kept for one signer (public key, 64 hex). */
  countOf(signer: string): number {
    return (prepared(this.db, "SELECT COUNT(*) AS n FROM used_nonces WHERE signer = ?").get(signer) as { n: number }).n;
  }
}

/** Rolls the transaction back. */
class NonceReplay extends Error {}
