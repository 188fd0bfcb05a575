/**
 * Wallet signatures as DBC checks them: sr25519 (or ed25519) over the raw UTF-8 bytes of a message
 * (a nonce, or a session id). No `<Bytes>` wrapping, no hashing: DBC's node verifies the bare bytes
 * (reference §2.3), and accepting the wrapped form would let any web page that gets a user to "sign
 * in" through a browser extension obtain a batu login for that user.
 */
import { hexToU8a, isHex, stringToU8a, u8aToHex } from "@polkadot/util";
import { cryptoIsReady, decodeAddress, ed25519Verify, encodeAddress, sr25519Verify } from "@polkadot/util-crypto";

/** SS58 prefix of canonical addresses: 42, generic Substrate (DBC's wallets start with `5`). */
export const SS58_PREFIX = 42;

/**
 * The signature work this process has done: wallets decoded and signatures checked. Tests count it:
 * what one request costs must not grow with what a stranger puts in it.
 */
export const signatureWork = { decodes: 0, verifies: 0 };

const HEX_KEY = /^(0x)?[0-9a-fA-F]{64}$/;
const HEX_SIGNATURE = /^(0x)?[0-9a-fA-F]{128}$/;

/**
 * A wallet's 32-byte public key: from an SS58 address (any network prefix, checksum checked) or 64
 * hex characters with or without `0x`. Undefined for anything else; never throws.
 */
export function walletPublicKey(wallet: unknown): Uint8Array | undefined {
  if (typeof wallet !== "string" || wallet.length === 0 || wallet.length > 128) return undefined;
  signatureWork.decodes++;
  if (HEX_KEY.test(wallet)) return hexToU8a(wallet.startsWith("0x") ? wallet : `0x${wallet}`);
  if (isHex(wallet)) return undefined; // other hex lengths are not keys
  try {
    const key = decodeAddress(wallet, false, -1);
    return key.length === 32 ? key : undefined;
  } catch {
    return undefined;
  }
}

/** The canonical SS58 address (prefix 42) of a wallet, or undefined when it is not one. */
export function canonicalWallet(wallet: unknown): string | undefined {
  const key = walletPublicKey(wallet);
  return key ? encodeAddress(key, SS58_PREFIX) : undefined;
}

/** A public key as 64 lower-case hex characters without `0x`: the form stored for nonces. */
export function publicKeyHex(key: Uint8Array): string {
  return u8aToHex(key, undefined, false);
}

/** The 64 bytes of a hex signature (with or without `0x`), or undefined. */
export function signatureBytes(signature: unknown): Uint8Array | undefined {
  if (typeof signature !== "string" || !HEX_SIGNATURE.test(signature)) return undefined;
  return hexToU8a(signature.startsWith("0x") ? signature : `0x${signature}`);
}

/** Throws when the WASM crypto is not initialised: a wiring bug, never to be mistaken for a bad signature. */
function assertReady(): void {
  if (!cryptoIsReady()) throw new Error("signature check before cryptoWaitReady(): await it once at startup");
}

/**
 * True when `signature` is `signer`'s sr25519 or ed25519 signature of the UTF-8 bytes of `message`.
 * `signer` is an SS58 address or a hex public key (or the key's bytes). False for any malformed input.
 */
export function verifySignature(message: string, signature: unknown, signer: unknown): boolean {
  assertReady();
  if (typeof message !== "string") return false;
  const key = signer instanceof Uint8Array ? (signer.length === 32 ? signer : undefined) : walletPublicKey(signer);
  const sig = signatureBytes(signature);
  if (!key || !sig) return false;
  const bytes = stringToU8a(message);
  signatureWork.verifies++;
  try {
    if (sr25519Verify(bytes, sig, key)) return true;
  } catch {
    // An sr25519 failure on odd bytes is a "no"; ed25519 gets its turn.
  }
  try {
    return ed25519Verify(bytes, sig, key);
  } catch {
    return false;
  }
}
