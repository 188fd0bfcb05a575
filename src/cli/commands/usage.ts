import { usageCsv } from "../../rental/usage.js";
import type { Command } from "commander";
import { withAgentOptions, withRemoteOptions, type AgentOptions } from "../options.js";
import { ask, hostClient, type RemoteOptions } from "../local-agent.js";
import { parseUntil } from "./rent.js";

export const usage = `batu usage [--from <time>] [--to <time>] [--csv | --json] [--conf-dir ./conf] [--port 10000]
  Each renter's use of this node over a period, from what its VMs ran: VM-hours, vCPU-hours, memory
  GiB-hours and GPU-hours, what a rental is billed on. --from and --to are ISO 8601 times; default the
  last 30 days. --csv for a spreadsheet. Asks the running agent (admin token from conf/).`;

interface Options extends AgentOptions, RemoteOptions {
  json?: boolean;
  csv?: boolean;
  from?: string;
  to?: string;
}

export function register(program: Command): void {
  withRemoteOptions(withAgentOptions(program.command("usage").description("each renter's VM-, vCPU-, memory- and GPU-hours on this node (table or CSV)").addHelpText("after", `\n${usage}`)))
    .option("--from <time>", "ISO 8601 time (default: 30 days ago)")
    .option("--to <time>", "ISO 8601 time (default: now)")
    .option("--csv", "print CSV")
    .option("--json", "print JSON")
    .action((opts: Options) => usageCommand(opts));
}

async function usageCommand(values: Options): Promise<void> {
  const time = (t: string | undefined) => (t === undefined ? undefined : parseUntil(t).toISOString());
  const report = await ask(() => hostClient(values).usage({ from: time(values.from), to: time(values.to) }));
  if (values.json) return console.log(JSON.stringify(report));
  const lines = report.usage.map((u) => ({ renter: u.renter, vmHours: u.vm_hours, vcpuHours: u.vcpu_hours, memGibHours: u.mem_gib_hours, gpuHours: u.gpu_hours }));
  if (values.csv) return void process.stdout.write(usageCsv(report.node_id, new Date(report.from), new Date(report.to), lines));
  console.log(`node ${report.node_id}, ${report.from} to ${report.to}`);
  const rows = [["renter", "VM-h", "vCPU-h", "mem GiB-h", "GPU-h"], ...lines.map((l) => [l.renter ?? "(operator)", ...[l.vmHours, l.vcpuHours, l.memGibHours, l.gpuHours].map(String)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
}
