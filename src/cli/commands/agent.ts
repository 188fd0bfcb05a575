import type { Command } from "commander";
import { ConfigError } from "../../config/json-file.js";
import { createLogger, parseLogFormat } from "../../lib/logger.js";
import { EXIT, UsageError } from "../errors.js";
import { parsePort, withAgentOptions, type AgentOptions } from "../options.js";
export const usage = `batu agent [--port 10000] [--tls-port 10443] [--host 0.0.0.0] [--conf-dir ./conf] [--data-dir ./data] [--log-level info]
           [--log-format auto|pretty|json]
           [--forward-host <addr>] [--cpu-overcommit 1] [--disk-overcommit 1] [--shutdown-timeout 60]
           [--heartbeat-ms 3000] [--suspect-after-ms 10000] [--dead-after-ms 60000] [--max-heartbeats-per-s 100]
           [--request-timeout 30] [--discover [--group-name <name>]] [--image-server] [--network auto|bridge|user]
  Runs this machine's agent: the host API (seed 000) on the given port, and every route over HTTPS on
  --tls-port (a self-signed certificate, conf/tls.crt; see batu tls). Other hosts must use HTTPS for
  the host API; the renter API (/api/v1) is served on both.
  --discover          find the master on the local network (SSDP) and join it; the master's join
                      token comes from BATU_JOIN_TOKEN (it is never sent: both sides prove they hold it)
  --group-name        with --discover: join only the master of this group
  --image-server      serve this node's image cache to the LAN (/image-server/v1; default: on a master,
                      or config.json image_server)
  --forward-host      address VM port forwards and VNC listen on (default: --host)
  --log-format        how log lines (on stderr) look: pretty (for a person), json (one object a line), or
                      auto (default, or BATU_LOG_FORMAT: pretty on a terminal, json otherwise); secrets are
                      redacted in both
  --network           how VMs are connected: bridge (a NAT network on bridge batubr0: dnsmasq, nftables),
                      user (QEMU's user-mode networking), auto (default: config.json network, else
                      bridge when running as root with ip, nft and dnsmasq, else user)
  --cpu-overcommit    vCPUs per host thread all VMs together may hold (default 1)
  --disk-overcommit   times the data file system's size all VM disks may be promised (default 1)
  --shutdown-timeout  seconds a graceful shutdown waits before powering off (default 60)
  --heartbeat-ms      a member's heartbeat period to its master (default 3000)
  --request-timeout   seconds a client has to send a whole request (headers: 10 at most) (default 30)
  --suspect-after-ms  master: a silent member turns suspect after this long (default 10000)
  --dead-after-ms     master: ... and dead after this long (default 60000; never forgotten by itself)
  --max-heartbeats-per-s  master: heartbeats it takes per second at most; a larger group's members are
                      told to beat less often (up to every 30 s), and the two times above stretch with
                      their period (default 100: 1,000 members beat every 10 s on average)`;

/** A whole number of milliseconds in [min, max], or a UsageError naming the flag. */
function parseMs(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag}: milliseconds in [${min}, ${max}]`);
  return n;
}

interface AgentCommandOptions extends AgentOptions {
  logLevel?: string;
  logFormat?: string;
  forwardHost?: string;
  cpuOvercommit: string;
  diskOvercommit: string;
  shutdownTimeout: string;
  heartbeatMs: string;
  requestTimeout: string;
  suspectAfterMs: string;
  deadAfterMs: string;
  maxHeartbeatsPerS: string;
  discover?: boolean;
  groupName?: string;
  imageServer?: boolean;
  network: string;
}

export function register(program: Command): void {
  withAgentOptions(program.command("agent").description("run this machine's agent (port 10000, HTTPS on 10443)").addHelpText("after", `\n${usage}`))
    // No default here: createLogger falls back to BATU_LOG_LEVEL, then info.
    .option("--log-level <level>", "trace, debug, info, warn, error")
    // No default: BATU_LOG_FORMAT, then auto.
    .option("--log-format <format>", "auto (pretty on a terminal, JSON otherwise), pretty or json")
    .option("--forward-host <addr>", "address VM port forwards and VNC listen on")
    .option("--cpu-overcommit <n>", "vCPUs per host thread", "1")
    .option("--disk-overcommit <n>", "times the data file system's size VM disks may be promised", "1")
    .option("--shutdown-timeout <sec>", "seconds a graceful shutdown waits", "60")
    .option("--heartbeat-ms <ms>", "a member's heartbeat period", "3000")
    .option("--request-timeout <sec>", "seconds a client has to send a request", "30")
    .option("--suspect-after-ms <ms>", "master: a silent member turns suspect", "10000")
    .option("--dead-after-ms <ms>", "master: ... and dead", "60000")
    .option("--max-heartbeats-per-s <n>", "master: heartbeats it takes per second at most", "100")
    .option("--discover", "find the master on the LAN (SSDP) and join it")
    .option("--group-name <name>", "with --discover: join only this group's master")
    .option("--image-server", "serve this node's image cache to the LAN")
    .option("--network <mode>", "auto, bridge or user", "auto")
    .action((opts: AgentCommandOptions) => agentCommand(opts));
}

/** `batu agent`: runs until SIGINT/SIGTERM, then stops cleanly (VMs keep running). */
export async function agentCommand(values: AgentCommandOptions): Promise<void> {
  if (!["auto", "bridge", "user"].includes(values.network)) throw new UsageError("--network: auto, bridge or user");
  const joinToken = process.env.BATU_JOIN_TOKEN;
  if (values.discover && !joinToken) throw new UsageError("--discover: set BATU_JOIN_TOKEN to the master's conf/join.token");
  if (values.groupName !== undefined && !values.discover) throw new UsageError("--group-name: only with --discover");
  const heartbeatMs = parseMs(values.heartbeatMs, "--heartbeat-ms", 100, 600_000);
  const requestTimeoutSec = Number(values.requestTimeout);
  if (!(Number.isInteger(requestTimeoutSec) && requestTimeoutSec >= 1 && requestTimeoutSec <= 3600)) {
    throw new UsageError("--request-timeout: whole seconds in [1, 3600]");
  }
  const suspectAfterMs = parseMs(values.suspectAfterMs, "--suspect-after-ms", 100, 86_400_000);
  const deadAfterMs = parseMs(values.deadAfterMs, "--dead-after-ms", 100, 86_400_000);
  if (deadAfterMs <= suspectAfterMs) throw new UsageError("--dead-after-ms: must be longer than --suspect-after-ms");
  const maxHeartbeatsPerS = Number(values.maxHeartbeatsPerS);
  if (!(Number.isInteger(maxHeartbeatsPerS) && maxHeartbeatsPerS >= 1 && maxHeartbeatsPerS <= 100_000)) {
    throw new UsageError("--max-heartbeats-per-s: a whole number in [1, 100000]");
  }
  const cpuOvercommit = Number(values.cpuOvercommit);
  if (!(cpuOvercommit > 0 && cpuOvercommit <= 64)) throw new UsageError("--cpu-overcommit: a number in (0, 64]");
  const diskOvercommit = Number(values.diskOvercommit);
  if (!(diskOvercommit > 0 && diskOvercommit <= 64)) throw new UsageError("--disk-overcommit: a number in (0, 64]");
  const shutdownTimeoutSec = Number(values.shutdownTimeout);
  if (!(shutdownTimeoutSec >= 0 && shutdownTimeoutSec <= 3600)) throw new UsageError("--shutdown-timeout: seconds in [0, 3600]");
  const logFormatText = values.logFormat ?? process.env.BATU_LOG_FORMAT;
  const logFormat = parseLogFormat(logFormatText);
  if (logFormatText !== undefined && !logFormat) throw new UsageError("--log-format (or BATU_LOG_FORMAT): auto, pretty or json");
  const log = createLogger({ level: values.logLevel, format: logFormat });
  // Loaded here, not at the top: every other command would pay for loading the whole agent.
  const { startAgent } = await import("../../agent/agent.js");
  // Heard from the start: a signal while the agent is still starting stops it once it has started
  // (the default action would kill it half-way, its store and sockets not closed).
  let signalled: string | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (signal: string) => {
    signalled ??= signal;
    wake?.();
  };
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  let agent;
  try {
    agent = await startAgent(
      {
        host: values.host,
        port: parsePort(values.port),
        tlsPort: parsePort(values.tlsPort, "--tls-port"),
        confDir: values.confDir,
        dataDir: values.dataDir,
        forwardHost: values.forwardHost,
        imageServer: values.imageServer,
        network: values.network as "auto" | "bridge" | "user",
        cpuOvercommit,
        diskOvercommit,
        shutdownTimeoutMs: shutdownTimeoutSec * 1000,
        requestTimeoutMs: requestTimeoutSec * 1000,
        heartbeatMs,
        suspectAfterMs,
        deadAfterMs,
        maxHeartbeatsPerS,
        discover: values.discover && joinToken ? { joinToken, groupName: values.groupName } : undefined,
      },
      log,
    );
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(`cannot start: ${e.message}`, EXIT.config);
    if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") {
      // The plain port or the HTTPS one: the error names which.
      const port = (e as { port?: number }).port ?? values.port;
      throw new UsageError(`cannot start: port ${port} on ${values.host} is already in use`, EXIT.failed);
    }
    throw e;
  }
  await new Promise<void>((resolve) => {
    if (signalled) resolve();
    else wake = resolve;
  });
  log.info({ signal: signalled }, "agent stopping");
  await agent.close().catch((e: unknown) => log.error({ err: e }, "agent stop failed"));
  log.info("agent stopped");
}
