/**
 * The signers and nonces of a renter's call, as a master forwards them to the member that serves it
 * (body field `batu_nonces`, under the forward's MAC): the member burns them too, so a replay is
 * refused on the node itself. Never the signatures: a member could replay those elsewhere.
 */
import type { SignedNonce } from "../../../auth/authorize.js";
import { FieldError } from "../../../vm/create-request.js";

export const FORWARDED_NONCES_FIELD = "batu_nonces";

/** DBC's multisig sets are small; a nonce is at most a few dozen characters. */
const MAX_NONCES = 64;
const MAX_NONCE_LENGTH = 256;
const SIGNER = /^[0-9a-f]{64}$/;

/** A forwarded body's nonces (none when absent). Throws a FieldError when the field is malformed. */
export function forwardedNonces(body: unknown): SignedNonce[] {
  const value = (body as Record<string, unknown> | null)?.[FORWARDED_NONCES_FIELD];
  if (value === undefined) return [];
  const invalid = () => new FieldError(FORWARDED_NONCES_FIELD, `${FORWARDED_NONCES_FIELD} is invalid`);
  if (!Array.isArray(value) || value.length > MAX_NONCES) throw invalid();
  return value.map((u: unknown) => {
    const { signer, nonce } = (u ?? {}) as Record<string, unknown>;
    if (typeof signer !== "string" || !SIGNER.test(signer) || typeof nonce !== "string" || nonce === "" || nonce.length > MAX_NONCE_LENGTH) throw invalid();
    return { signer, nonce };
  });
}
