import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CONFIG_FILE, HOST_CONFIG_FILE } from "../../config/host-files.js";
import { readAdminToken } from "../../auth/identity.js";
import { TOKEN_FILES, TOKEN_KINDS, writeNewToken, type TokenKind } from "../../auth/tokens.js";
import { HostApiError, HostClient, UnreachableError } from "../../sdk/index.js";
import type { Command } from "commander";
import { failed, UsageError } from "../errors.js";
import { parsePort, withAgentOptions, type AgentOptions } from "../options.js";

export const usage = `batu token rotate <admin|join|metrics> [--conf-dir ./conf] [--port 10000] [--json]
  Replaces this host's admin token (conf/admin.token), group join token (conf/join.token) or read-only
  metrics token (conf/metrics.token: GET /metrics only) with a new random one. The running agent takes it at once, without a restart: the old token is refused
  from the next request on. When no agent runs, the file is replaced for its next start.
  Members that joined already are not affected by a new join token (they sign with their node keys).
  On a master of a group of masters (config.json group_ha) every master takes the new token at once;
  there the agent must be running.`;

export function register(program: Command): void {
  const token = program.command("token").description("rotate this host's admin, join or metrics token (no restart)").addHelpText("after", `\n${usage}`);
  withAgentOptions(token.command("rotate").argument("<admin|join>", "which token").description("replace a token with a new random one"))
    .option("--json", "print JSON")
    .action((kind: string, opts: AgentOptions & { json?: boolean }) => tokenRotate(kind, opts));
}

async function tokenRotate(kind: string, values: AgentOptions & { json?: boolean }): Promise<void> {
  if (!TOKEN_KINDS.includes(kind as TokenKind)) throw new UsageError(`which token: admin, join or metrics\n${usage}`);
  const confDir = resolve(values.confDir);
  const adminToken = readAdminToken(confDir);
  if (!adminToken) throw failed(`no admin token in ${confDir}: is this the host's conf dir?`);
  let reply: { message: "ok"; token: TokenKind; file: string };
  try {
    reply = await new HostClient(`127.0.0.1:${parsePort(values.port)}`, adminToken).rotateToken({ token: kind as TokenKind });
  } catch (e) {
    if (e instanceof HostApiError) throw failed(`rotate refused: ${e.message}`);
    if (!(e instanceof UnreachableError)) throw e;
    // No agent answers here: replace the file; the agent reads it when it starts.
    if (mastersOnEtcd(confDir)) {
      throw failed("this master is one of a group's (config.json group_ha): it takes the group's tokens from etcd when it starts; rotate with its agent running, and every master takes the new token");
    }
    writeNewToken(confDir, kind as TokenKind);
    reply = { message: "ok", token: kind as TokenKind, file: join(confDir, TOKEN_FILES[kind as TokenKind]) };
  }
  if (values.json) console.log(JSON.stringify(reply));
  else console.log(`rotated the ${reply.token} token: the new one is in ${reply.file}; the old one is refused from now on`);
}

/** Whether this conf dir is a master of a group of masters (docs/ha.md): its tokens are the group's, kept in etcd. */
function mastersOnEtcd(confDir: string): boolean {
  const read = (file: string): Record<string, unknown> | undefined => {
    try {
      return JSON.parse(readFileSync(join(confDir, file), "utf8")) as Record<string, unknown>;
    } catch {
      return undefined; // absent or unreadable: the agent would make or refuse it; no group either way
    }
  };
  const hostType = read(HOST_CONFIG_FILE)?.host_type ?? "master";
  return hostType === "master" && read(CONFIG_FILE)?.group_ha !== undefined;
}
