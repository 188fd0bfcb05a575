import { join, resolve } from "node:path";
import { readAdminToken } from "../../auth/identity.js";
import { TOKEN_FILES, TOKEN_KINDS, writeNewToken, type TokenKind } from "../../auth/tokens.js";
import { HostApiError, HostClient, UnreachableError } from "../../sdk/index.js";
import { UsageError } from "../errors.js";
import { AGENT_FLAGS, parse, parsePort } from "../options.js";

export const usage = `batu token rotate <admin|join|metrics> [--conf-dir ./conf] [--port 10000] [--json]
  Replaces this host's admin token (conf/admin.token), group join token (conf/join.token) or read-only
  metrics token (conf/metrics.token: GET /metrics only) with a new random one. The running agent takes it at once, without a restart: the old token is refused
  from the next request on. When no agent runs, the file is replaced for its next start.
  Members that joined already are not affected by a new join token (they sign with their node keys).`;

export async function tokenCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === "rotate") return tokenRotate(rest);
  throw new UsageError(`unknown token command: ${sub ?? "(none)"}\n${usage}`);
}

async function tokenRotate(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...AGENT_FLAGS, json: { type: "boolean" } });
  const kind = positionals[0];
  if (!TOKEN_KINDS.includes(kind as TokenKind)) throw new UsageError(`which token: admin, join or metrics\n${usage}`);
  const confDir = resolve(values["conf-dir"]);
  const adminToken = readAdminToken(confDir);
  if (!adminToken) throw new UsageError(`no admin token in ${confDir}: is this the host's conf dir?`, 1);
  let reply: { message: "ok"; token: TokenKind; file: string };
  try {
    reply = await new HostClient(`127.0.0.1:${parsePort(values.port)}`, adminToken).rotateToken({ token: kind as TokenKind });
  } catch (e) {
    if (e instanceof HostApiError) throw new UsageError(`rotate refused: ${e.message}`, 1);
    if (!(e instanceof UnreachableError)) throw e;
    // No agent answers here: replace the file; the agent reads it when it starts.
    writeNewToken(confDir, kind as TokenKind);
    reply = { message: "ok", token: kind as TokenKind, file: join(confDir, TOKEN_FILES[kind as TokenKind]) };
  }
  if (values.json) console.log(JSON.stringify(reply));
  else console.log(`rotated the ${reply.token} token: the new one is in ${reply.file}; the old one is refused from now on`);
}
