import type { Command } from "commander";
import { withAgentOptions, withOutputOptions, withRemoteOptions, type AgentOptions } from "../options.js";
import { ask, hostClient, type RemoteOptions } from "../local-agent.js";
import { outputFormat, print, table, type OutputOptions } from "../output.js";

export const usage = `batu gpu list [--json] [--conf-dir ./conf] [--port 10000]
  This node's GPUs for passthrough: bus address, model, NUMA node, state (free, in use by which VM,
  unavailable and why).`;

type Options = AgentOptions & RemoteOptions & OutputOptions;

export function register(program: Command): void {
  const gpu = program.command("gpu").description("this node's GPUs for passthrough and who holds each").addHelpText("after", `\n${usage}`);
  withOutputOptions(withRemoteOptions(withAgentOptions(gpu.command("list").description("this node's GPUs")))).action((opts: Options) => gpuList(opts));
}

async function gpuList(values: Options): Promise<void> {
  const format = outputFormat(values);
  const gpus = await ask(() => hostClient(values).gpuList());
  print(gpus, format, () =>
    gpus.length === 0
      ? "no GPU on this host"
      : table(gpus, [
          { header: "address", value: (g) => g.pci_address },
          { header: "model", value: (g) => `${g.vendor} ${g.model}` },
          { header: "numa", value: (g) => g.numa_node },
          { header: "state", value: (g) => (g.state === "in use" ? `in use by ${g.vm_id}` : g.state === "unavailable" ? `unavailable: ${g.reason}` : "free") },
        ]),
  );
}
