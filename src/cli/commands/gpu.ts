import { UsageError } from "../errors.js";
import { AGENT_FLAGS, parse } from "../options.js";
import { ask, localAgent } from "../local-agent.js";

export const usage = `batu gpu list [--json] [--conf-dir ./conf] [--port 10000]
  This node's GPUs for passthrough: bus address, model, NUMA node, state (free, in use by which VM,
  unavailable and why).`;

export async function gpuCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== "list") throw new UsageError(`unknown gpu command: ${sub ?? "(none)"}\n${usage}`);
  const { values } = parse(rest, { ...AGENT_FLAGS, json: { type: "boolean" } });
  const gpus = await ask(() => localAgent(values).gpuList());
  if (values.json) return console.log(JSON.stringify(gpus));
  if (gpus.length === 0) return console.log("no GPU on this host");
  for (const g of gpus) {
    const state = g.state === "in use" ? `in use by ${g.vm_id}` : g.state === "unavailable" ? `unavailable: ${g.reason}` : "free";
    console.log(`${g.pci_address}  ${g.vendor} ${g.model}  numa ${g.numa_node ?? "-"}  ${state}`);
  }
}
