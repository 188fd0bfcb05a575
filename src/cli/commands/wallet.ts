import { readFileSync, writeFileSync } from "node:fs";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { stringToU8a, u8aToHex } from "@polkadot/util";
import { base58Encode, cryptoWaitReady, mnemonicGenerate, randomAsU8a } from "@polkadot/util-crypto";
import { SS58_PREFIX } from "../../auth/signature.js";
import { UsageError } from "../errors.js";
import { parse } from "../options.js";

export const usage = `batu wallet new [--type sr25519|ed25519] [--save <file>] [--json]
  Makes a wallet: prints its SS58 address and its secret (a mnemonic). Stores nothing,
  unless --save writes the secret to a new file (mode 0600; the secret is then not printed).
batu wallet sign <message> [--secret-file <file>] [--type sr25519|ed25519] [--json]
  Signs the message's UTF-8 bytes (a nonce, or a session id) as DBC's sign tool does and
  prints the signature (0x + 128 hex). The secret comes from --secret-file, else from
  BATU_WALLET_SECRET: a mnemonic, a dev URI like //Alice, or a 0x seed.
batu wallet nonce [--secret-file <file>] [--type sr25519|ed25519]
  Prints {"wallet","nonce","sign"}: a fresh nonce signed by the wallet, the identity fields of
  one renter API request (/api/v1). A nonce is accepted once.`;

const TYPES = ["sr25519", "ed25519"] as const;
type KeyType = (typeof TYPES)[number];

const FLAGS = {
  type: { type: "string", default: "sr25519" },
  save: { type: "string" },
  "secret-file": { type: "string" },
  json: { type: "boolean" },
} as const;

export async function walletCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === "new") return walletNew(rest);
  if (sub === "sign") return walletSign(rest);
  if (sub === "nonce") return walletNonce(rest);
  throw new UsageError(`unknown wallet command: ${sub ?? "(none)"}\n${usage}`);
}

function keyType(text: string | undefined): KeyType {
  const t = TYPES.find((x) => x === text);
  if (!t) throw new UsageError(`--type: must be one of ${TYPES.join(", ")}`);
  return t;
}

async function pairFrom(secret: string, type: KeyType): Promise<KeyringPair> {
  await cryptoWaitReady();
  try {
    return new Keyring({ type, ss58Format: SS58_PREFIX }).addFromUri(secret);
  } catch (e) {
    throw new UsageError(`the secret is not a mnemonic, dev URI (//Alice) or 0x seed: ${(e as Error).message}`);
  }
}

/** The wallet secret: --secret-file, else BATU_WALLET_SECRET. */
function readSecret(file: string | undefined): string {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`--secret-file: cannot read ${file}: ${(e as Error).message}`);
    }
    const secret = text.trim();
    if (!secret) throw new UsageError(`--secret-file: ${file} is empty`);
    return secret;
  }
  const env = process.env.BATU_WALLET_SECRET?.trim();
  if (!env) throw new UsageError("no wallet secret: set BATU_WALLET_SECRET or pass --secret-file <file>");
  return env;
}

const hexSign = (pair: KeyringPair, message: string): string => u8aToHex(pair.sign(stringToU8a(message)));

async function walletNew(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, FLAGS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${usage}`);
  const type = keyType(values.type);
  const secret = mnemonicGenerate(12);
  const pair = await pairFrom(secret, type);
  if (values.save !== undefined) {
    try {
      writeFileSync(values.save, secret + "\n", { mode: 0o600, flag: "wx" });
    } catch (e) {
      throw new UsageError(`--save: cannot create ${values.save} (an existing file is never overwritten): ${(e as Error).message}`);
    }
  }
  const shown = values.save === undefined ? secret : undefined;
  if (values.json) {
    console.log(JSON.stringify({ type, address: pair.address, public_key: u8aToHex(pair.publicKey), ...(shown ? { secret: shown } : { secret_file: values.save }) }));
    return;
  }
  console.log(`address:    ${pair.address}`);
  console.log(`public key: ${u8aToHex(pair.publicKey)}`);
  console.log(`type:       ${type}`);
  console.log(shown ? `secret:     ${shown}` : `secret:     saved to ${values.save}`);
  console.log("The secret is the wallet: keep it safe. batu stored nothing else.");
}

async function walletSign(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, FLAGS);
  const message = positionals[0];
  if (message === undefined || positionals.length > 1) throw new UsageError(`give exactly one <message> (quote it)\n${usage}`);
  const pair = await pairFrom(readSecret(values["secret-file"]), keyType(values.type));
  const sign = hexSign(pair, message);
  console.log(values.json ? JSON.stringify({ wallet: pair.address, message, sign }) : sign);
}

async function walletNonce(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, FLAGS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${usage}`);
  const pair = await pairFrom(readSecret(values["secret-file"]), keyType(values.type));
  const nonce = base58Encode(randomAsU8a(32));
  console.log(JSON.stringify({ wallet: pair.address, nonce, sign: hexSign(pair, nonce) }));
}
