import { verifySignature } from "./signature.js";

/** Default bound of a VerifiedSignatures: ~10k renters' session signatures, a few MiB at most. */
export const VERIFIED_SIGNATURES_MAX = 10_000;

/**
 * Signatures that verified, remembered so that a repeat of the exact same (message, signer,
 * signature) skips the sr25519 check, most of a session request's CPU (0.3–0.5 ms). Only the pure
 * crypto answer is kept, and only a "yes": the same triple always verifies the same way, so a hit is
 * as good as a check, and anything else (another signature, another signer) is checked in full.
 * Whether the signer may act now (rental, session) is for the caller to decide on every request.
 * Bounded: the least recently used entry goes first.
 */
export class VerifiedSignatures {
  // A Set iterates in insertion order: re-inserting on a hit keeps the least recently used entry first.
  private readonly entries = new Set<string>();

  constructor(readonly maxEntries: number = VERIFIED_SIGNATURES_MAX) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new Error(`maxEntries must be a positive integer, got ${maxEntries}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** True when `signature` of `message` by `signer` (an SS58 address or hex key) verified before. */
  has(message: string, signer: string, signature: string): boolean {
    const key = keyOf(message, signer, signature);
    if (!this.entries.delete(key)) return false;
    this.entries.add(key);
    return true;
  }

  /** `verifySignature`, answered from memory when this exact triple verified before. */
  verify(message: string, signer: string, signature: string): boolean {
    if (this.has(message, signer, signature)) return true;
    if (!verifySignature(message, signature, signer)) return false;
    this.entries.add(keyOf(message, signer, signature));
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.values().next().value!);
    return true;
  }
}

// Length-prefixed so that no two different triples share a key, whatever characters they hold.
const keyOf = (message: string, signer: string, signature: string): string =>
  `${message.length}:${signer.length}:${message}${signer}${signature}`;
