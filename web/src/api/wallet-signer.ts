/**
 * The renter's signing code: @polkadot's sr25519 (WASM). Loaded only by a dynamic import when a
 * renter signs in with a wallet secret, so the operator's page never downloads it. The secret stays
 * in this page's memory: it is never sent, only the signatures of fresh nonces are.
 */
import { Keyring } from "@polkadot/keyring";
import { stringToU8a, u8aToHex } from "@polkadot/util";
import { cryptoWaitReady } from "@polkadot/util-crypto";

export interface WalletSigner {
  /** The wallet's SS58 address (prefix 42, as batu names renters). */
  address: string;
  /** The signature (0x + 128 hex) of the raw UTF-8 bytes of `message`: what DBC and batu verify (docs/renter-auth.md). */
  sign(message: string): string;
}

/** A signer from a mnemonic, a dev URI (`//Alice`) or a 0x seed: what `batu wallet` takes. */
export async function walletSigner(secret: string): Promise<WalletSigner> {
  await cryptoWaitReady();
  const pair = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri(secret.trim());
  return { address: pair.address, sign: (message) => u8aToHex(pair.sign(stringToU8a(message))) };
}
