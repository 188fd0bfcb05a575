/**
 * A renter's wallet as the renter API wants it: each request carries a fresh nonce signed by the
 * wallet (the raw UTF-8 bytes, as DBC's sign tool signs them), or a session id and its signature.
 */
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { stringToU8a, u8aToHex } from "@polkadot/util";
import { base58Encode, cryptoWaitReady, randomAsU8a } from "@polkadot/util-crypto";
import { SS58_PREFIX } from "../auth/signature.js";

export const WALLET_TYPES = ["sr25519", "ed25519"] as const;
export type WalletType = (typeof WALLET_TYPES)[number];

/** The secret is not a mnemonic, a dev URI or a seed. */
export class WalletSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WalletSecretError";
  }
}

/** The key pair of a secret: a mnemonic, a dev URI like //Alice, or a 0x seed. */
export async function walletPair(secret: string, type: WalletType = "sr25519"): Promise<KeyringPair> {
  await cryptoWaitReady();
  try {
    return new Keyring({ type, ss58Format: SS58_PREFIX }).addFromUri(secret);
  } catch (e) {
    throw new WalletSecretError(`the secret is not a mnemonic, dev URI (//Alice) or 0x seed: ${(e as Error).message}`);
  }
}

/** The wallet's signature of a message's UTF-8 bytes: 0x + 128 hex. */
export const signText = (pair: KeyringPair, message: string): string => u8aToHex(pair.sign(stringToU8a(message)));

/** A fresh random nonce: 44 base58 characters (a nonce is accepted once per wallet, ever). */
export const freshNonce = (): string => base58Encode(randomAsU8a(32));

/** One of the identities a renter API request carries. */
export type RenterIdentity = { wallet: string; nonce: string; sign: string } | { session_id: string; session_id_sign: string };

/** Makes the identity of each request: a wallet signs a fresh nonce every time; a session is the same pair each time. */
export type IdentitySource = () => RenterIdentity;

export const walletIdentity =
  (pair: KeyringPair): IdentitySource =>
  () => {
    const nonce = freshNonce();
    return { wallet: pair.address, nonce, sign: signText(pair, nonce) };
  };

export const sessionIdentity =
  (sessionId: string, sessionSign: string): IdentitySource =>
  () => ({ session_id: sessionId, session_id_sign: sessionSign });
