import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { u8aToHex } from "@polkadot/util";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { freshNonce, signText } from "../../sdk/wallet-signer.js";
import { UsageError } from "../errors.js";
import { runArgs } from "../program.js";
import { keyType, pairFrom, walletOf, type WalletOptions } from "../wallet-secret.js";

export const usage = `batu wallet new [--type sr25519|ed25519] [--save <file>] [--json]
  Makes a wallet: prints its SS58 address and its secret (a mnemonic). Stores nothing,
  unless --save writes the secret to a new file (mode 0600; the secret is then not printed).
batu wallet sign <message> [--wallet-file <file>] [--type sr25519|ed25519] [--json]
  Signs the message's UTF-8 bytes (a nonce, or a session id) as DBC's sign tool does and
  prints the signature (0x + 128 hex). The secret comes from --wallet-file (or --secret-file), else from
  BATU_WALLET_SECRET: a mnemonic, a dev URI like //Alice, or a 0x seed.
batu wallet nonce [--wallet-file <file>] [--type sr25519|ed25519]
  Prints {"wallet","nonce","sign"}: a fresh nonce signed by the wallet, the identity fields of
  one renter API request (/api/v1). A nonce is accepted once.`;

interface Options extends WalletOptions {
  save?: string;
  json?: boolean;
}

/** The secret flags and --type, on each subcommand that signs. */
const withSecret = (cmd: Command) =>
  cmd
    .option("--wallet-file <file>", "the wallet's secret (else BATU_WALLET_SECRET)")
    .option("--secret-file <file>", "the same as --wallet-file")
    .option("--type <type>", "sr25519 or ed25519", "sr25519");

export function register(program: Command): void {
  const wallet = program.command("wallet").description("make a renter wallet, sign a nonce or session id").addHelpText("after", `\n${usage}`);
  wallet
    .command("new")
    .description("make a wallet: its address and secret")
    .option("--type <type>", "sr25519 or ed25519", "sr25519")
    .option("--save <file>", "write the secret to this new file (0600) instead of printing it")
    .option("--json", "print JSON")
    .action((opts: Options) => walletNew(opts));
  withSecret(wallet.command("sign").argument("<message>", "a nonce or session id (quote it)").description("sign a message's UTF-8 bytes"))
    .option("--json", "print JSON")
    .action((message: string, opts: Options) => walletSign(message, opts));
  withSecret(wallet.command("nonce").description("a fresh nonce signed by the wallet: one request's identity fields")).action((opts: Options) => walletNonce(opts));
}

/** Runs `batu wallet <args>` in this process (tests). */
export const walletCommand = (args: string[]): Promise<void> => runArgs(["wallet", ...args], [register]);

async function walletNew(values: Options): Promise<void> {
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

async function walletSign(message: string, values: Options): Promise<void> {
  const pair = await walletOf(values);
  const sign = signText(pair, message);
  console.log(values.json ? JSON.stringify({ wallet: pair.address, message, sign }) : sign);
}

async function walletNonce(values: Options): Promise<void> {
  const pair = await walletOf(values);
  const nonce = freshNonce();
  console.log(JSON.stringify({ wallet: pair.address, nonce, sign: signText(pair, nonce) }));
}
