import { readAdminToken } from "../../auth/identity.js";
import { createLogger } from "../../lib/logger.js";
import { ApiError } from "../../api/errors.js";
import { HostApiError, HostClient, UnreachableError } from "../../sdk/index.js";
import type { Command } from "commander";
import { failed, unreachable, UsageError } from "../errors.js";
import { parsePort, withAgentOptions, type AgentOptions } from "../options.js";

export const usage = `batu group join <master-address> --token <join token> [--conf-dir ./conf] [--data-dir ./data] [--port 10000]
batu group join --discover [--group-name <name>] --token <join token> [...]
  Makes this host a member of the master's group (token also from BATU_JOIN_TOKEN). With
  --discover, finds the master on the local network (SSDP) instead of being told its address.
  The token is never sent: the master proves it holds it, and so does this host.
  Asks this host's running agent to join, so it takes the new role at once; when no agent
  runs, registers with the master directly and writes conf/host_config.json.
batu group remove <node_id|address> [--conf-dir ./conf] [--port 10000] [--json]
  Makes this host's agent (a master) forget a member. A dead member stays listed until removed.`;

interface JoinOptions extends AgentOptions {
  token?: string;
  json?: boolean;
  discover?: boolean;
  groupName?: string;
}

export function register(program: Command): void {
  const group = program.command("group").description("join a master's group, or forget a member").addHelpText("after", `\n${usage}`);
  withAgentOptions(group.command("join").argument("[master-address]", "the master's address (ip or ip:port)").description("make this host a member of the master's group"))
    .option("--token <token>", "the master's join token (or BATU_JOIN_TOKEN)")
    .option("--discover", "find the master on the local network (SSDP)")
    .option("--group-name <name>", "with --discover: join only this group's master")
    .option("--json", "print JSON")
    .action((master: string | undefined, opts: JoinOptions) => groupJoin(master, opts));
  withAgentOptions(group.command("remove").argument("<node_id|address>", "the member").description("make this host's agent (a master) forget a member"))
    .option("--json", "print JSON")
    .action((which: string, opts: AgentOptions & { json?: boolean }) => groupRemove(which, opts));
}

async function groupJoin(master: string | undefined, values: JoinOptions): Promise<void> {
  if (!master && !values.discover) throw new UsageError(`missing <master-address> (or --discover)\n${usage}`);
  if (master && values.discover) throw new UsageError("give either <master-address> or --discover, not both");
  if (values.groupName !== undefined && !values.discover) throw new UsageError("--group-name: only with --discover");
  const token = values.token ?? process.env.BATU_JOIN_TOKEN;
  if (!token) throw new UsageError("missing --token (or BATU_JOIN_TOKEN): the master's conf/join.token");
  const port = parsePort(values.port);
  const adminToken = readAdminToken(values.confDir);

  const request = master
    ? { master, token }
    : { discover: true, token, ...(values.groupName !== undefined ? { group_name: values.groupName } : {}) };
  let reply;
  try {
    if (!adminToken) throw new UnreachableError("(no admin token)", new Error("no agent has run here"));
    reply = await new HostClient(`127.0.0.1:${port}`, adminToken, 15_000).becomeMember(request);
  } catch (e) {
    if (e instanceof HostApiError) throw failed(`join refused: ${e.message}`);
    if (!(e instanceof UnreachableError)) throw e;
    // No agent runs here: do the same thing offline, through the same service.
    const { openAgentState } = await import("../../agent/state.js");
    const state = await openAgentState(
      { confDir: values.confDir, dataDir: values.dataDir, host: values.host, port, tlsPort: parsePort(values.tlsPort, "--tls-port") },
      createLogger({ level: "warn" }),
    );
    try {
      reply = await state.group.becomeMember(request);
    } catch (err) {
      if (err instanceof ApiError) throw failed(`join refused: ${err.message}`);
      throw err;
    } finally {
      state.close();
    }
  }
  if (values.json) console.log(JSON.stringify(reply));
  else console.log(`joined group ${reply.group_name} of master ${reply.master} as ${reply.address}`);
}

async function groupRemove(which: string, values: AgentOptions & { json?: boolean }): Promise<void> {
  const adminToken = readAdminToken(values.confDir);
  if (!adminToken) throw failed(`no admin token in ${values.confDir}: is this the master's conf dir?`);
  // A node id is 64 hex characters; anything else is taken as an address.
  const body = /^[0-9a-f]{64}$/.test(which) ? { node_id: which } : { address: which };
  let reply;
  try {
    reply = await new HostClient(`127.0.0.1:${parsePort(values.port)}`, adminToken).groupRemove(body);
  } catch (e) {
    if (e instanceof HostApiError) throw failed(`remove refused: ${e.message}`);
    if (e instanceof UnreachableError) throw unreachable(`no agent answers on port ${values.port}: ${e.message}`);
    throw e;
  }
  if (values.json) console.log(JSON.stringify(reply));
  else console.log(`removed member ${reply.node_id ?? "(no node id)"} at ${reply.address}`);
}
