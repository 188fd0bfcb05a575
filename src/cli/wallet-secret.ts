import { readFileSync } from "node:fs";
import type { KeyringPair } from "@polkadot/keyring/types";
import { WALLET_TYPES, WalletSecretError, walletPair, type WalletType } from "../sdk/wallet-signer.js";
import { UsageError } from "./errors.js";

/** `--wallet-file` / `--secret-file` (the same flag under two names) and `--type`. */
export interface WalletOptions {
  walletFile?: string;
  secretFile?: string;
  type?: string;
}

export function keyType(text: string | undefined): WalletType {
  const t = WALLET_TYPES.find((x) => x === (text ?? "sr25519"));
  if (!t) throw new UsageError(`--type: must be one of ${WALLET_TYPES.join(", ")}`);
  return t;
}

/** The wallet secret: --wallet-file (or --secret-file), else BATU_WALLET_SECRET. Never from the command line: it would sit in `ps` and the shell's history. */
export function readSecret(opts: WalletOptions): string {
  if (opts.walletFile !== undefined && opts.secretFile !== undefined && opts.walletFile !== opts.secretFile) {
    throw new UsageError("--wallet-file and --secret-file are the same flag: give one");
  }
  const file = opts.walletFile ?? opts.secretFile;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`--wallet-file: cannot read ${file}: ${(e as Error).message}`);
    }
    const secret = text.trim();
    if (!secret) throw new UsageError(`--wallet-file: ${file} is empty`);
    return secret;
  }
  const env = process.env.BATU_WALLET_SECRET?.trim();
  if (!env) throw new UsageError("no wallet secret: set BATU_WALLET_SECRET or pass --wallet-file <file>");
  return env;
}

/** The key pair of a secret, its faults as usage errors. */
export async function pairFrom(secret: string, type: WalletType): Promise<KeyringPair> {
  try {
    return await walletPair(secret, type);
  } catch (e) {
    if (e instanceof WalletSecretError) throw new UsageError(e.message);
    throw e;
  }
}

/** The renter's key pair from the options (file or environment). */
export const walletOf = (opts: WalletOptions): Promise<KeyringPair> => pairFrom(readSecret(opts), keyType(opts.type));
