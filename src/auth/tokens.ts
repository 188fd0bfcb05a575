import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_TOKEN_FILE, JOIN_TOKEN_FILE, METRICS_TOKEN_FILE } from "./identity.js";
import { newToken } from "./secrets.js";

/**
 * The tokens of a host: the operator's (host API), the group's (joins), and the read-only one of a
 * metrics scraper (`GET /metrics` and nothing else).
 */
export type TokenKind = "admin" | "join" | "metrics";

export const TOKEN_KINDS: readonly TokenKind[] = ["admin", "join", "metrics"];

export const TOKEN_FILES: Record<TokenKind, string> = { admin: ADMIN_TOKEN_FILE, join: JOIN_TOKEN_FILE, metrics: METRICS_TOKEN_FILE };

/**
 * Writes a fresh token to `conf/<kind>.token` through a 0600 temporary file, flushed, then renamed
 * over the old one (and the directory flushed): a crash leaves the old token or the new one, never
 * half of one, and the file is never readable by others. Returns the new token. Throws on a failed
 * write (a read-only conf dir), the old file untouched.
 */
export function writeNewToken(confDir: string, kind: TokenKind): string {
  const token = newToken();
  writeToken(confDir, kind, token);
  return token;
}

/** Writes `token` to `conf/<kind>.token` as writeNewToken does (0600, whole or not at all, flushed). */
export function writeToken(confDir: string, kind: TokenKind, token: string): void {
  const path = join(confDir, TOKEN_FILES[kind]);
  const tmp = join(confDir, `.${TOKEN_FILES[kind]}.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  try {
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, token + "\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  const dir = openSync(confDir, "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * A running agent's tokens, read at each use, so that `rotate` takes effect at once (no restart): the
 * old token is refused from the next request on. The file is written first, so a failed write changes
 * nothing.
 */
export class HostTokens {
  private readonly tokens: Record<TokenKind, string>;

  constructor(
    private readonly confDir: string,
    initial: Record<TokenKind, string>,
  ) {
    this.tokens = { ...initial };
  }

  admin = (): string => this.tokens.admin;
  join = (): string => this.tokens.join;
  metrics = (): string => this.tokens.metrics;

  /** The `kind` token in force now. */
  get(kind: TokenKind): string {
    return this.tokens[kind];
  }

  /** The file that holds the `kind` token. */
  file(kind: TokenKind): string {
    return join(this.confDir, TOKEN_FILES[kind]);
  }

  /** Makes a new `kind` token, on disk then in force. Returns the file that holds it. */
  rotate(kind: TokenKind): string {
    this.tokens[kind] = writeNewToken(this.confDir, kind);
    return this.file(kind);
  }

  /** Puts `token` in force as the `kind` token (another master of the group rotated it), on disk first. */
  replace(kind: TokenKind, token: string): void {
    writeToken(this.confDir, kind, token);
    this.tokens[kind] = token;
  }
}
