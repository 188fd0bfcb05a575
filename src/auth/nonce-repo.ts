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
 * Renters' used nonces, kept in SQLite forever (DBC forgets them on restart): the persisted
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
}

/** Rolls the transaction back. */
class NonceReplay extends Error {}
