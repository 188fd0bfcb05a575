/**
 * One identity for every master of an HA group. Members pin their master by its node id and TLS
 * certificate, and the operator and members hold its tokens: so all masters present the same node
 * key, certificate and tokens, and a member or renter cannot tell which one answers. The first master
 * to reach etcd puts its own there; every later one takes them, replacing its local files.
 */
import type { Etcd3 } from "etcd3";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_TOKEN_FILE, JOIN_TOKEN_FILE, METRICS_TOKEN_FILE, NODE_KEY_FILE } from "../../auth/identity.js";
import { TLS_CERT_FILE, TLS_KEY_FILE } from "../../auth/tls-identity.js";
import { PRIVATE_FILE_MODE } from "../../lib/private-files.js";

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
