import { readAdminToken } from "../../auth/identity.js";
import { openAgentState } from "../../agent/state.js";
import { createLogger } from "../../lib/logger.js";
import { ApiError } from "../../api/errors.js";
import { HostApiError, HostClient, UnreachableError } from "../../sdk/index.js";
import { UsageError } from "../errors.js";
import { AGENT_FLAGS, parse, parsePort } from "../options.js";

export const usage = `batu group join <master-address> --token <join token> [--conf-dir ./conf] [--data-dir ./data] [--port 10000]
batu group join --discover [--group-name <name>] --token <join token> [...]
  Makes this host a member of the master's group (token also from BATU_JOIN_TOKEN). With
  --discover, finds the master on the local network (SSDP) instead of being told its address.
  The token is never sent: the master proves it holds it, and so does this host.
  Asks this host's running agent to join, so it takes the new role at once; when no agent
  runs, registers with the master directly and writes conf/host_config.json.
batu group remove <node_id|address> [--conf-dir ./conf] [--port 10000] [--json]
  Makes this host's agent (a master) forget a member. A dead member stays listed until removed.`;

export async function groupCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === "join") return groupJoin(rest);
  if (sub === "remove") return groupRemove(rest);
  throw new UsageError(`unknown group command: ${sub ?? "(none)"}\n${usage}`);
}

async function groupJoin(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    ...AGENT_FLAGS,
    token: { type: "string" },
    json: { type: "boolean" },
    discover: { type: "boolean" },
    "group-name": { type: "string" },
  });
  const master = positionals[0];
  if (!master && !values.discover) throw new UsageError(`missing <master-address> (or --discover)\n${usage}`);
  if (master && values.discover) throw new UsageError("give either <master-address> or --discover, not both");
  if (values["group-name"] !== undefined && !values.discover) throw new UsageError("--group-name: only with --discover");
  const token = values.token ?? process.env.BATU_JOIN_TOKEN;
  if (!token) throw new UsageError("missing --token (or BATU_JOIN_TOKEN): the master's conf/join.token");
  const port = parsePort(values.port);
  const adminToken = readAdminToken(values["conf-dir"]);

  const request = master
    ? { master, token }
    : { discover: true, token, ...(values["group-name"] !== undefined ? { group_name: values["group-name"] } : {}) };
  let reply;
  try {
    if (!adminToken) throw new UnreachableError("(no admin token)", new Error("no agent has run here"));
    reply = await new HostClient(`127.0.0.1:${port}`, adminToken, 15_000).becomeMember(request);
  } catch (e) {
    if (e instanceof HostApiError) throw new UsageError(`join refused: ${e.message}`, 1);
    if (!(e instanceof UnreachableError)) throw e;
    // No agent runs here: do the same thing offline, through the same service.
    const state = await openAgentState(
      { confDir: values["conf-dir"], dataDir: values["data-dir"], host: values.host, port, tlsPort: parsePort(values["tls-port"], "--tls-port") },
      createLogger({ level: "warn" }),
    );
    try {
      reply = await state.group.becomeMember(request);
    } catch (err) {
      if (err instanceof ApiError) throw new UsageError(`join refused: ${err.message}`, 1);
      throw err;
    } finally {
      state.close();
    }
  }
  if (values.json) console.log(JSON.stringify(reply));
  else console.log(`joined group ${reply.group_name} of master ${reply.master} as ${reply.address}`);
}

async function groupRemove(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...AGENT_FLAGS, json: { type: "boolean" } });
  const which = positionals[0];
  if (!which) throw new UsageError(`missing <node_id|address>\n${usage}`);
  const adminToken = readAdminToken(values["conf-dir"]);
  if (!adminToken) throw new UsageError(`no admin token in ${values["conf-dir"]}: is this the master's conf dir?`, 1);
  // A node id is 64 hex characters; anything else is taken as an address.
  const body = /^[0-9a-f]{64}$/.test(which) ? { node_id: which } : { address: which };
  let reply;
  try {
    reply = await new HostClient(`127.0.0.1:${parsePort(values.port)}`, adminToken).groupRemove(body);
  } catch (e) {
    if (e instanceof HostApiError) throw new UsageError(`remove refused: ${e.message}`, 1);
    if (e instanceof UnreachableError) throw new UsageError(`no agent answers on port ${values.port}: ${e.message}`, 1);
    throw e;
  }
  if (values.json) console.log(JSON.stringify(reply));
  else console.log(`removed member ${reply.node_id ?? "(no node id)"} at ${reply.address}`);
}
