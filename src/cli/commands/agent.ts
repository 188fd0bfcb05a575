import { ConfigError } from "../../config/json-file.js";
import { startAgent } from "../../agent/agent.js";
import { createLogger } from "../../lib/logger.js";
import { UsageError } from "../errors.js";
import { AGENT_FLAGS, parse, parsePort } from "../options.js";

export const usage = `batu agent [--port 10000] [--host 0.0.0.0] [--conf-dir ./conf] [--data-dir ./data] [--log-level info]
           [--forward-host <addr>] [--cpu-overcommit 1] [--shutdown-timeout 60]
  Runs this machine's agent: the host API (seed 000) on the given port.
  --forward-host      address VM port forwards and VNC listen on (default: --host)
  --cpu-overcommit    vCPUs per host thread all VMs together may hold (default 1)
  --shutdown-timeout  seconds a graceful shutdown waits before powering off (default 60)`;

/** `batu agent`: runs until SIGINT/SIGTERM, then stops cleanly (VMs keep running). */
export async function agentCommand(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...AGENT_FLAGS,
    "log-level": { type: "string", default: "info" },
    "forward-host": { type: "string" },
    "cpu-overcommit": { type: "string", default: "1" },
    "shutdown-timeout": { type: "string", default: "60" },
  });
  const cpuOvercommit = Number(values["cpu-overcommit"]);
  if (!(cpuOvercommit > 0 && cpuOvercommit <= 64)) throw new UsageError("--cpu-overcommit: a number in (0, 64]");
  const shutdownTimeoutSec = Number(values["shutdown-timeout"]);
  if (!(shutdownTimeoutSec >= 0 && shutdownTimeoutSec <= 3600)) throw new UsageError("--shutdown-timeout: seconds in [0, 3600]");
  const log = createLogger({ level: values["log-level"] });
  let agent;
  try {
    agent = await startAgent(
      {
        host: values.host,
        port: parsePort(values.port),
        confDir: values["conf-dir"],
        dataDir: values["data-dir"],
        forwardHost: values["forward-host"],
        cpuOvercommit,
        shutdownTimeoutMs: shutdownTimeoutSec * 1000,
      },
      log,
    );
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(`cannot start: ${e.message}`, 78);
    if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new UsageError(`cannot start: port ${values.port} on ${values.host} is already in use`, 1);
    }
    throw e;
  }
  const running = agent;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, "agent stopping");
      running.close().then(resolve, (e: unknown) => {
        log.error({ err: e }, "agent stop failed");
        resolve();
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  log.info("agent stopped");
}
