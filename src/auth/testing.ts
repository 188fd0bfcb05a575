/**
 * Test helpers: wallets made the way DBC's clients make them (@polkadot/keyring, sr25519 by default)
 * and identity fields signed the way DBC's sign tool signs (the nonce's UTF-8 bytes).
 */
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { stringToU8a, u8aToHex } from "@polkadot/util";
import { cryptoWaitReady, randomAsHex } from "@polkadot/util-crypto";
import { RenterRefusal } from "./errors.js";
import { dbcErrorOf } from "../server/routes/v1/errors.js";

export interface TestWallet {
  pair: KeyringPair;
  /** SS58, prefix 42. */
  address: string;
  /** `0x` + 64 hex. */
  publicKeyHex: string;
  /** Hex signature (`0x…`) of the message's UTF-8 bytes. */
  sign(message: string): string;
}

/** A wallet from a dev URI (`//Alice`, `//renter-1`): the same key every run. Await `cryptoWaitReady()` first. */
export function testWallet(uri: string, type: "sr25519" | "ed25519" = "sr25519"): TestWallet {
  const pair = new Keyring({ type, ss58Format: 42 }).addFromUri(uri);
  return {
    pair,
    address: pair.address,
    publicKeyHex: u8aToHex(pair.publicKey),
    sign: (message) => u8aToHex(pair.sign(stringToU8a(message))),
  };
}

/** A fresh nonce like DBC's clients send: random, base16 here (any string is accepted). */
export function testNonce(): string {
  return randomAsHex(24).slice(2);
}

/** `wallet`, `nonce`, `sign` of a request body, signed by `w` with a fresh nonce. */
export function walletIdentity(w: TestWallet, nonce = testNonce()): { wallet: string; nonce: string; sign: string } {
  return { wallet: w.address, nonce, sign: w.sign(nonce) };
}

/** `multisig_accounts` with `set` as wallets, signed by `signers` (each with its own fresh nonce). */
export function multisigIdentity(set: TestWallet[], threshold: number | string, signers: TestWallet[]) {
  return {
    multisig_accounts: {
      wallets: set.map((w) => w.address),
      threshold: String(threshold),
      signs: signers.map((w) => walletIdentity(w)),
    },
  };
}

export { cryptoWaitReady };

/** The DBC answer of a refusal `fn` throws, as the renter API sends it: [http status, errcode, message]. */
export function dbcRefusal(fn: () => unknown): [number, number, string] {
  try {
    fn();
  } catch (e) {
    const wire = e instanceof RenterRefusal ? dbcErrorOf(e) : undefined;
    if (wire) return [wire.httpStatus, wire.errcode, wire.message];
    throw e;
  }
  throw new Error("did not throw");
}
