/**
 * One identity for every master of an HA group. Members pin their master by its node id and TLS
 * certificate, and the operator and members hold its tokens: so all masters present the same node
 * key, certificate and tokens, and a member or renter cannot tell which one answers. The first master
 * to reach etcd puts its own there; every later one takes them, replacing its local files.
 *
 * The tokens can be rotated while the masters run: the rotating master puts the new one in etcd, and
 * every master (itself included) follows the tokens' keys there and puts each new one in force, its
 * file first (SharedTokens).
 */
import type { Etcd3, IKeyValue, Watcher } from "etcd3";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_TOKEN_FILE, JOIN_TOKEN_FILE, METRICS_TOKEN_FILE, NODE_KEY_FILE } from "../../auth/identity.js";
import { TLS_CERT_FILE, TLS_KEY_FILE } from "../../auth/tls-identity.js";
import { PRIVATE_FILE_MODE } from "../../lib/private-files.js";
import type { Logger } from "../../lib/logger.js";
import { newToken } from "../../auth/secrets.js";
import { TOKEN_FILES, TOKEN_KINDS, type TokenKind } from "../../auth/tokens.js";

export const SHARED_IDENTITY_FILES = [NODE_KEY_FILE, TLS_KEY_FILE, TLS_CERT_FILE, ADMIN_TOKEN_FILE, JOIN_TOKEN_FILE, METRICS_TOKEN_FILE] as const;

/**
 * Puts this master's identity files in etcd under `prefix` where the group has none yet, and writes
 * the group's over the local ones where it has. Returns the files replaced (the caller reloads them).
 */
export async function shareIdentity(etcd: Etcd3, confDir: string, prefix: string): Promise<string[]> {
  const replaced: string[] = [];
  for (const file of SHARED_IDENTITY_FILES) {
    const path = join(confDir, file);
    if (!existsSync(path)) continue; // made lazily by its own command (metrics.token); nothing to share yet
    const local = readFileSync(path, "utf8");
    const key = `${prefix}${file}`;
    const result = await etcd.if(key, "Create", "==", 0).then(etcd.put(key).value(local)).else(etcd.get(key)).commit();
    if (result.succeeded) continue;
    const group = result.responses[0]?.response_range?.kvs[0]?.value.toString("utf8");
    if (group === undefined || group === local) continue;
    const temporary = `${path}.group`;
    writeFileSync(temporary, group, { mode: PRIVATE_FILE_MODE });
    renameSync(temporary, path);
    replaced.push(file);
  }
  return replaced;
}

/** What SharedTokens puts new tokens in force with: the agent's HostTokens. */
export interface TokenHolder {
  get(kind: TokenKind): string;
  file(kind: TokenKind): string;
  replace(kind: TokenKind, token: string): void;
}

/** How long a failed watch of the tokens waits before it reads them again. */
const REFOLLOW_MS = 1_000;

/**
 * The group's admin, join and metrics tokens, kept the same on every master while they run. A
 * rotation puts the new token in etcd (`<prefix><kind>.token`, the key shareIdentity uses); each master
 * watches those keys and puts what changes in force. Each token's changes are applied in etcd's
 * order (its revision): when two masters rotate at once, every master ends on the later one.
 */
export class SharedTokens {
  private watcher: Watcher | undefined;
  private closed = false;
  /** The etcd revision of the value in force, per token: an older one arriving late is not applied. */
  private readonly applied = new Map<TokenKind, number>();

  constructor(
    private readonly etcd: Etcd3,
    /** e.g. `/batu/<group>/identity/`. */
    private readonly prefix: string,
    private readonly tokens: TokenHolder,
    private readonly log: Logger,
  ) {}

  /**
   * A new random `kind` token for every master: in etcd first (a failure changes nothing anywhere),
   * then in force here (the others take it from their watch). Returns the file that holds it.
   */
  async rotate(kind: TokenKind): Promise<string> {
    const token = newToken();
    // As the file holds it: a master starting later finds etcd's value equal to its file.
    const put = await this.etcd.put(this.key(kind)).value(`${token}\n`);
    try {
      this.apply(kind, token, Number(put.header.revision));
    } catch (e) {
      throw new Error(`the other masters take the new token, but this one cannot (${(e as Error).message}); it takes it when it starts again`);
    }
    return this.tokens.file(kind);
  }

  /** Reads the group's tokens (putting any that differ in force), then follows their changes. */
  async follow(): Promise<void> {
    await this.unfollow();
    const response = await this.etcd.getAll().prefix(this.prefix).exec();
    for (const kv of response.kvs) this.applyKv(kv, "read");
    const watcher = await this.etcd.watch().prefix(this.prefix).startRevision(String(Number(response.header.revision) + 1)).create();
    if (this.closed) {
      // Closed while the watch was being made (the agent stopping): nothing to follow for.
      await watcher.cancel();
      return;
    }
    this.watcher = watcher;
    watcher.on("put", (kv) => this.applyKv(kv, "rotated"));
    // A cancelled watch (its revision compacted away): read the tokens again. A lost connection is resumed by the client.
    watcher.on("error", (e: Error) => {
      this.log.warn({ err: e.message }, "group_ha: the watch of the group's tokens failed; reading them again");
      setTimeout(() => this.refollow(), REFOLLOW_MS).unref();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.unfollow();
  }

  private refollow(): void {
    if (this.closed) return;
    this.follow().catch((e: Error) => {
      this.log.warn({ err: e.message }, "group_ha: cannot read the group's tokens; retrying");
      setTimeout(() => this.refollow(), REFOLLOW_MS).unref();
    });
  }

  private async unfollow(): Promise<void> {
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.cancel();
  }

  private applyKv(kv: IKeyValue, how: "read" | "rotated"): void {
    const kind = TOKEN_KINDS.find((k) => kv.key.toString() === this.key(k));
    if (!kind) return; // the node key and certificate: never rotated
    try {
      if (this.apply(kind, kv.value.toString("utf8").trim(), Number(kv.mod_revision))) {
        this.log.info({ kind }, `group_ha: the ${kind} token was ${how === "read" ? "changed in the group" : "rotated by a master"}; in force here now`);
      }
    } catch (e) {
      // The old token stays in force here (its file could not be written) while the others moved on: loudly.
      this.log.error({ kind, err: (e as Error).message }, "group_ha: cannot put the group's new token in force on this master");
    }
  }

  /**
   * Puts `token` in force unless a later value is; true when it replaced the one in force. Throws
   * when its file cannot be written (the old token then stays in force).
   */
  private apply(kind: TokenKind, token: string, revision: number): boolean {
    if (revision <= (this.applied.get(kind) ?? 0)) return false;
    const replaced = token !== "" && this.tokens.get(kind) !== token;
    if (replaced) this.tokens.replace(kind, token);
    this.applied.set(kind, revision);
    return replaced;
  }

  private key(kind: TokenKind): string {
    return `${this.prefix}${TOKEN_FILES[kind]}`;
  }
}
