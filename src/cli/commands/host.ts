import type { Command } from "commander";
import { withAgentOptions, withOutputOptions, withRemoteOptions, type AgentOptions } from "../options.js";
import { ask, hostClient, type RemoteOptions } from "../local-agent.js";
import { outputFormat, print, type OutputOptions } from "../output.js";
import type { Maintenance } from "../../api/host-maintenance.js";

export const usage = `batu host status|cordon|drain|uncordon [--reason "..."] [--json] [--conf-dir ./conf] [--port 10000]
  Maintenance of this host. cordon: no VM starts here from now on (new tasks and stopped ones are
  refused, saying why; renters see it in the node's info); running VMs go on. drain: cordon, and shut
  every running VM down gracefully (powered off after the shutdown timeout). uncordon: VMs may start
  again (those a drain shut down stay shut down until started). It holds across agent restarts.`;

type Options = AgentOptions & RemoteOptions & OutputOptions & { reason?: string };

const describe = (m: Maintenance): string =>
  m.cordoned ? `${m.drained ? "drained" : "cordoned"} since ${m.since}${m.reason ? `: ${m.reason}` : ""}` : "in service (not cordoned)";

export function register(program: Command): void {
  const host = program.command("host").description("this host's maintenance: cordon, drain, uncordon").addHelpText("after", `\n${usage}`);
  const cmd = (name: string, description: string) => withOutputOptions(withRemoteOptions(withAgentOptions(host.command(name).description(description))));
  cmd("status", "whether the host is cordoned or drained").action(async (opts: Options) => {
    const m = await ask(() => hostClient(opts).maintenance());
    print(m, outputFormat(opts), () => describe(m));
  });
  cmd("cordon", "no VM starts here from now on")
    .option("--reason <text>", "what is done, until when (renters see it)")
    .action(async (opts: Options) => {
      const m = await ask(() => hostClient(opts).cordon(opts.reason !== undefined ? { reason: opts.reason } : {}));
      print(m, outputFormat(opts), () => describe(m));
    });
  cmd("drain", "cordon, and shut every running VM down")
    .option("--reason <text>", "what is done, until when (renters see it)")
    .action(async (opts: Options) => {
      const r = await ask(() => hostClient(opts).drain(opts.reason !== undefined ? { reason: opts.reason } : {}));
      print(r, outputFormat(opts), () =>
        [describe(r.maintenance), `shutting down: ${r.stopping.length ? r.stopping.join(", ") : "none ran"}`, ...r.refused.map((f) => `not shut down: ${f.vm_id}: ${f.message} (drain again)`)].join("\n"),
      );
    });
  cmd("uncordon", "VMs may start here again").action(async (opts: Options) => {
    const r = await ask(() => hostClient(opts).uncordon());
    print(r, outputFormat(opts), () => "in service: VMs may start here again");
  });
}
