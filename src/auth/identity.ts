import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Type } from "@sinclair/typebox";
import { cryptoWaitReady, sr25519PairFromSeed, sr25519Sign, randomAsU8a } from "@polkadot/util-crypto";
import { hexToU8a, u8aToHex } from "@polkadot/util";
import { ConfigError, firstSchemaError } from "../config/json-file.js";
import { makePrivateFile } from "../lib/private-files.js";
import { newToken } from "./secrets.js";

export const NODE_KEY_FILE = "node.key";
export const ADMIN_TOKEN_FILE = "admin.token";
export const JOIN_TOKEN_FILE = "join.token";
/** The read-only token of a metrics scraper: it opens `GET /metrics` and nothing else. */
export const METRICS_TOKEN_FILE = "metrics.token";

const NodeKeyFile = Type.Object({
  type: Type.Literal("sr25519"),
  seed: Type.String({ pattern: "^0x[0-9a-f]{64}$" }),
});

/** Who this agent is: its node key (the node id is the public key) and its tokens. */
export interface NodeIdentity {
  /** 64 hex characters, no 0x: DBC's node_id form. */
  nodeId: string;
  publicKey: Uint8Array;
  /** Signs a message with the node's sr25519 key. */
  sign(message: Uint8Array | string): Uint8Array;
  adminToken: string;
  joinToken: string;
  metricsToken: string;
}

/** Writes a secret file readable by its owner only. Never overwrites: `wx`. */
function createSecretFile(path: string, content: string): void {
  try {
    writeFileSync(path, content, { mode: 0o600, flag: "wx" });
  } catch (e) {
    throw new ConfigError(path, undefined, `is missing and cannot be created: ${(e as Error).message}`);
  }
}

/** Reads a secret file, tightening its mode to 0600 when it was looser. */
function readSecretFile(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(path, undefined, `cannot be read: ${(e as Error).message}`);
  }
  // A read-only conf dir keeps the file's mode: it still works; docs/configuration.md names the mode.
  makePrivateFile(path);
  return text;
}

function loadToken(path: string): string {
  const existing = readSecretFile(path)?.trim();
  if (existing !== undefined) {
    if (existing.length < 16) throw new ConfigError(path, undefined, "holds a token shorter than 16 characters");
    return existing;
  }
  const token = newToken();
  createSecretFile(path, token + "\n");
  return token;
}

function loadSeed(path: string): Uint8Array {
  const text = readSecretFile(path);
  if (text === undefined) {
    const seed = randomAsU8a(32);
    createSecretFile(path, JSON.stringify({ type: "sr25519", seed: u8aToHex(seed) }) + "\n");
    return seed;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, undefined, `is not valid JSON: ${(e as Error).message}`);
  }
  const err = firstSchemaError(NodeKeyFile, value);
  if (err) throw new ConfigError(path, err[0], err[1]);
  return hexToU8a((value as { seed: string }).seed);
}

/** Loads this agent's identity from the conf dir, creating what is missing (mode 0600). */
export async function loadIdentity(confDir: string): Promise<NodeIdentity> {
  await cryptoWaitReady();
  const pair = sr25519PairFromSeed(loadSeed(join(confDir, NODE_KEY_FILE)));
  return {
    nodeId: u8aToHex(pair.publicKey, undefined, false),
    publicKey: pair.publicKey,
    sign: (message) => sr25519Sign(message, pair),
    adminToken: loadToken(join(confDir, ADMIN_TOKEN_FILE)),
    joinToken: loadToken(join(confDir, JOIN_TOKEN_FILE)),
    metricsToken: loadToken(join(confDir, METRICS_TOKEN_FILE)),
  };
}

/** Reads the admin token only (for the CLI talking to its own agent). */
export function readAdminToken(confDir: string): string | undefined {
  return readSecretFile(join(confDir, ADMIN_TOKEN_FILE))?.trim();
}
