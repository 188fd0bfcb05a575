import { prepared, type Db } from "../store/db.js";
import { publicKeyHex } from "./signature.js";

export { MAX_NONCE_LENGTH } from "../api/v1/request.js";

export interface NonceUse {
  /** The signer's 32-byte public key. */
  signer: Uint8Array;
  nonce: string;
}

/**
 * Used nonces, kept in SQLite forever (DBC forgets them on restart). Keyed by (signer public key,
 * nonce): a signature binds its signer, so that is all replay protection needs; the key rather than
 * the address string means one wallet under two SS58 prefixes is still one signer; and one renter's
 * choice of nonce can never lock another out, nor stop co-signers of a multisig signing one challenge.
 */
export class NonceRepo {
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

  /** True when the signer has used the nonce. */
  used(signer: Uint8Array, nonce: string): boolean {
    return prepared(this.db, "SELECT 1 FROM used_nonces WHERE signer = ? AND nonce = ?").get(publicKeyHex(signer), nonce) !== undefined;
  }
}

/** Rolls the transaction back. */
class NonceReplay extends Error {}
