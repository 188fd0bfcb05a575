/**
 * `batu vm ...`: the operator's VMs through the host API (`/common/vm/*`), on this host's agent or
 * another's (`--remote`). `create` waits until the guest is ready; disks and snapshots are in
 * vm-storage.ts.
 */
import type { Command } from "commander";
import type { VmAdd, VmItem } from "../../api/host-vm.js";
import { GROUP_VM_PAGE, type HostClient } from "../../sdk/index.js";
import { failed, UsageError } from "../errors.js";
import { ask, hostClient, remoteEndpoint, type RemoteOptions } from "../local-agent.js";
import { collect, parseCount, parsePort, withAgentOptions, withOutputOptions, withRemoteOptions, type AgentOptions } from "../options.js";
import { bytes, duration, isMachine, keyValues, outputFormat, print, table, type Column, type OutputOptions } from "../output.js";
import { spinnerAllowed } from "../spinner.js";
import { waitUntil } from "../wait.js";
import { registerStorage } from "./vm-storage.js";

export const usage = `batu vm list [--group] [--node <node_id>] [--limit <n>] ...
batu vm create|show|start|stop|restart|delete|stats|console|log ...
batu vm disk list|add|resize|delete <vm_id> ...
batu vm snapshot list|create|restore|delete <vm_id> ...
  The operator's VMs on this host's agent (admin token from --conf-dir), or another host's with
  --remote https://<host>:10443 --token <its admin token> --tls-pin <its certificate's SHA-256>.
  create waits until the guest is ready (--no-wait returns once QEMU runs). See docs/cli.md.`;

type Options = AgentOptions & RemoteOptions & OutputOptions;

interface CreateOptions extends Options {
  name?: string;
  cpus: string;
  vcpus?: string;
  memory: string;
  disk?: string;
  image?: string;
  gpus?: string;
  sshPort?: string;
  vncPort?: string;
  forward?: string[];
  note?: string;
  wait: boolean;
  timeout: string;
}

/** Lifecycle calls answer when the action is done: a graceful shutdown may take the agent's timeout (60 s default). */
const client = (opts: Options) => hostClient(opts, 5 * 60_000);

const LIST_COLUMNS: Column<VmItem>[] = [
  { header: "id", value: (v) => v.id },
  { header: "name", value: (v) => v.nickname },
  { header: "status", value: (v) => v.status },
  { header: "ready", value: (v) => (v.ready ? "yes" : "no") },
  { header: "cpus", value: (v) => v.cpu_virtual_core, align: "right" },
  { header: "memory", value: (v) => v.main_memory, align: "right" },
  { header: "image", value: (v) => v.image_name },
  { header: "ssh", value: (v) => v.ssh_port },
  { header: "owner", value: (v) => v.owner ?? "operator" },
];

export function register(program: Command): void {
  const vm = program.command("vm").description("VMs on this host or another: list, create, start, stop, console; disks and snapshots").addHelpText("after", `\n${usage}`);
  const sub = (name: string, description: string) => withRemoteOptions(withAgentOptions(vm.command(name).description(description)));

  withOutputOptions(sub("list", "the VMs of this host (--group: of every node, on a master)").alias("ls"))
    .option("--group", "every node's VMs (on a master), asked page by page")
    .option("--node <node_id>", "only this node's VMs (on a master; implies --group)")
    .option("--limit <n>", "at most this many VMs, the first in node order")
    .option("--page-size <n>", `with --group: VMs the master is asked for per call (default ${GROUP_VM_PAGE})`)
    .action((opts: ListOptions) => vmList(opts));

  withOutputOptions(sub("create", "create and start a VM, and wait until its guest is ready"))
    .option("--name <name>", "its nickname")
    .option("--cpus <n>", "CPU cores", "1")
    .option("--vcpus <n>", "vCPUs in all (cores × threads; default --cpus)")
    .option("--memory <size>", "memory: 512M, 2G", "1G")
    .option("--disk <size>", "a data disk vdb of this size: 8G")
    .option("--image <name>", "the image to boot (default the demo image)")
    .option("--gpus <n>", "GPUs to pass through")
    .option("--ssh-port <port>", "host port forwarded to the guest's 22 (chosen when absent)")
    .option("--vnc-port <port>", "host port of its VNC (chosen when absent)")
    .option("--forward <spec>", "a port forward in DBC's syntax, repeatable: tcp,8080:80", collect)
    .option("--note <text>", "a note of how the VM is meant to be used (kept, never run)")
    .option("--no-wait", "return once QEMU runs, before the guest is ready")
    .option("--timeout <sec>", "how long to wait for the guest", "300")
    .action((opts: CreateOptions) => vmCreate(opts));

  withOutputOptions(sub("show", "one VM's settings").argument("<vm_id>")).action((id: string, opts: Options) => vmShow(id, opts));

  sub("start", "start a stopped VM").argument("<vm_id>").action((id: string, opts: Options) => control(id, "start", opts));
  sub("stop", "shut a VM down (ACPI; powered off after the agent's timeout)")
    .argument("<vm_id>")
    .option("--force", "power it off at once")
    .action((id: string, opts: Options & { force?: boolean }) => control(id, opts.force ? "poweroff" : "shutdown", opts));
  sub("restart", "restart a VM (gracefully; --force resets it)")
    .argument("<vm_id>")
    .option("--force", "reset at once")
    .action((id: string, opts: Options & { force?: boolean }) => control(id, "restart", opts, opts.force));
  sub("delete", "delete a VM and its disks").alias("rm").argument("<vm_id>").action((id: string, opts: Options) => control(id, "delete", opts));

  withOutputOptions(sub("stats", "a VM's live figures: CPU, memory, disk and network").argument("<vm_id>")).action((id: string, opts: Options) => vmStats(id, opts));
  withOutputOptions(sub("console", "how to reach a VM's screen over VNC: address, port, password").argument("<vm_id>")).action((id: string, opts: Options) =>
    vmConsole(id, opts),
  );
  withOutputOptions(sub("log", "a VM's lifecycle log").argument("<vm_id>"))
    .option("--head", "the oldest lines instead of the newest")
    .option("--lines <n>", "how many lines", "100")
    .action((id: string, opts: Options & { head?: boolean; lines: string }) => vmLog(id, opts));

  registerStorage(vm);
}

interface ListOptions extends Options {
  group?: boolean;
  node?: string;
  limit?: string;
  pageSize?: string;
}

async function vmList(opts: ListOptions): Promise<void> {
  const format = outputFormat(opts);
  const group = opts.group === true || opts.node !== undefined;
  if (opts.node !== undefined && !/^[0-9a-f]{64}$/.test(opts.node)) throw new UsageError(`--node: a node id (64 hex characters, batu group list), not ${opts.node}`);
  if (opts.pageSize !== undefined && !group) throw new UsageError("--page-size: only with --group or --node");
  const limit = opts.limit === undefined ? Infinity : parseCount(opts.limit, "--limit", 1);
  const vms = group ? await groupVms(client(opts), opts, limit) : (await ask(() => client(opts).vmList())).slice(0, limit);
  const columns = group ? [{ header: "node", value: (v: VmItem) => v.node_id?.slice(0, 12) }, ...LIST_COLUMNS] : LIST_COLUMNS;
  print(vms, format, () => (vms.length === 0 ? "no VMs" : table(vms, columns)));
}

/**
 * The group's VMs (or one node's), page by page up to `limit`: a whole list of a large group costs
 * the master seconds in one call, a page milliseconds. Members left out are named on stderr.
 */
async function groupVms(c: HostClient, opts: ListOptions, limit: number): Promise<VmItem[]> {
  const pageSize = opts.pageSize === undefined ? GROUP_VM_PAGE : parseCount(opts.pageSize, "--page-size", 1, 10_000);
  const vms: VmItem[] = [];
  const unreachable = new Map<string, string>();
  let uncounted = 0;
  await ask(async () => {
    const pages = c.groupVmPages({ ...(opts.node !== undefined ? { node_id: opts.node } : {}), limit: Math.min(pageSize, limit) });
    for await (const page of pages) {
      for (const u of page.unreachable) unreachable.set(u.node_id, u.reason);
      uncounted = Math.max(uncounted, page.unreachableCount - page.unreachable.length);
      vms.push(...page.vms.slice(0, limit - vms.length));
      if (vms.length >= limit) break;
    }
  });
  if (unreachable.size > 0 || uncounted > 0) {
    const named = [...unreachable].map(([node, reason]) => `  ${node.slice(0, 12)}: ${reason}`);
    const more = uncounted > 0 ? [`  and at least ${uncounted} more`] : [];
    process.stderr.write(`left out, unreachable:\n${[...named, ...more].join("\n")}\n`);
  }
  return vms;
}

/** The VM of that id in this host's list, or a refusal naming it (exit 1). */
async function findVm(c: HostClient, id: string): Promise<VmItem> {
  const vm = (await ask(() => c.vmList())).find((v) => v.id === id);
  if (!vm) throw failed(`no VM ${id} on this host (batu vm list)`);
  return vm;
}

function describeVm(vm: VmItem): string {
  return keyValues([
    ["id", vm.id],
    ["name", vm.nickname],
    ["status", vm.status],
    ["ready", vm.ready ? "yes" : "no"],
    ["cpus", `${vm.cpu_physical_core} cores, ${vm.cpu_virtual_core} vCPUs`],
    ["memory", vm.main_memory],
    ["data disk", vm.disk_memory === "0" ? "none" : vm.disk_memory],
    ["image", vm.image_name],
    ["gpus", vm.gpu_count],
    ["ssh port", vm.ssh_port],
    ["vnc port", vm.vnc_port],
    ["forwards", vm.custom_port.join(" ") || "none"],
    ["owner", vm.owner ?? "operator"],
    ["created", vm.created_at],
    ...(vm.start_command ? [["note", vm.start_command] as const] : []),
    ...(vm.rental_ended_at ? [["rental ended", vm.rental_ended_at] as const] : []),
  ]);
}

/** The request `vm create`'s flags make; each value checked here, so a typo is a usage error (exit 2) before any call. */
export function createRequest(opts: CreateOptions): VmAdd {
  const size = (text: string, flag: string) => {
    if (!/^\d+(\.\d+)?\s*[MG]?B?$/i.test(text.trim())) throw new UsageError(`${flag}: a size like 512M or 8G, not ${text}`);
    return text.trim();
  };
  return {
    ...(opts.name !== undefined ? { nickname: opts.name } : {}),
    cpu_physical_core: parseCount(opts.cpus, "--cpus", 1, 256),
    ...(opts.vcpus !== undefined ? { cpu_virtual_core: parseCount(opts.vcpus, "--vcpus", 1, 512) } : {}),
    main_memory: size(opts.memory, "--memory"),
    ...(opts.disk !== undefined ? { disk_memory: size(opts.disk, "--disk") } : {}),
    ...(opts.image !== undefined ? { image_name: opts.image } : {}),
    ...(opts.gpus !== undefined ? { gpu_count: parseCount(opts.gpus, "--gpus", 0, 64) } : {}),
    ...(opts.sshPort !== undefined ? { ssh_port: parsePort(opts.sshPort, "--ssh-port") } : {}),
    ...(opts.vncPort !== undefined ? { vnc_port: parsePort(opts.vncPort, "--vnc-port") } : {}),
    ...(opts.forward?.length ? { custom_port: opts.forward } : {}),
    ...(opts.note !== undefined ? { start_command: opts.note } : {}),
  };
}

async function vmCreate(opts: CreateOptions): Promise<void> {
  const format = outputFormat(opts);
  const body = createRequest(opts);
  const timeoutMs = parseCount(opts.timeout, "--timeout", 1, 86_400) * 1000;
  const c = client(opts);
  const { id } = await ask(() => c.vmAdd(body));
  if (opts.wait) {
    await waitUntil(
      async () => {
        const vm = await findVm(c, id);
        if (vm.ready) return { done: true };
        if (vm.status.endsWith(" error") || vm.status === "closed") return { failed: `VM ${id} did not come up: ${vm.status}` };
        return { waiting: vm.status === "running" ? "guest booting" : vm.status };
      },
      { timeoutMs, spin: spinnerAllowed(!isMachine(format)), what: `VM ${id}` },
    );
  }
  const vm = await findVm(c, id);
  print(vm, format, () => `created VM ${id}${opts.wait ? ", ready" : " (booting: batu vm show to see when it is ready)"}\n${describeVm(vm)}`);
}

async function vmShow(id: string, opts: Options): Promise<void> {
  const vm = await findVm(client(opts), id);
  print(vm, outputFormat(opts), () => describeVm(vm));
}

const DONE: Record<string, string> = { start: "started", shutdown: "shut down", poweroff: "powered off", restart: "restarted", delete: "deleted" };

async function control(id: string, action: "start" | "shutdown" | "poweroff" | "restart" | "delete", opts: Options, force?: boolean): Promise<void> {
  await ask(() => client(opts).vmControl({ vm_id: id, action, ...(force ? { force: true } : {}) }));
  console.log(`${DONE[action]} ${id}`);
}

async function vmStats(id: string, opts: Options): Promise<void> {
  const s = await ask(() => client(opts).vmStats(id));
  print(s, outputFormat(opts), () =>
    keyValues([
      ["id", s.vm_id],
      ["status", `${s.status}${s.ready ? ", ready" : ""}`],
      ["uptime", duration(s.uptime_sec)],
      ["cpu", `${s.cpu.usage_percent === null ? "-" : `${s.cpu.usage_percent.toFixed(1)}%`} of ${s.cpu.vcpus} vCPUs (100% = one busy)`],
      ["cpu time", s.cpu.time_ms === null ? null : duration(s.cpu.time_ms / 1000)],
      ["memory", `${bytes(s.memory.used_bytes)} used of ${bytes(s.memory.configured_bytes)}`],
      ["disk read", bytes(s.disk.read_bytes)],
      ["disk written", bytes(s.disk.written_bytes)],
      ["network in", s.network.rx_bytes === null ? "- (not counted for user-mode NICs)" : bytes(s.network.rx_bytes)],
      ["network out", s.network.tx_bytes === null ? "-" : bytes(s.network.tx_bytes)],
    ]),
  );
}

async function vmConsole(id: string, opts: Options): Promise<void> {
  const vnc = await ask(() => client(opts).vmVnc(id));
  // VNC listening on every address: reach it by the address the agent was reached by.
  const remote = opts.remote ?? process.env.BATU_REMOTE;
  const host = vnc.host ?? (remote ? remoteEndpoint(remote).address.replace(/:\d+$/, "").replace(/^\[|\]$/g, "") : "127.0.0.1");
  const data = { vm_id: vnc.vm_id, host, port: vnc.port, password: vnc.password, running: vnc.running, url: `vnc://${host.includes(":") ? `[${host}]` : host}:${vnc.port}` };
  print(data, outputFormat(opts), () =>
    [
      keyValues([
        ["vnc", `${data.host}:${data.port}`],
        ["password", data.password],
        ["url", data.url],
      ]),
      vnc.running ? `Open it with any VNC viewer: vncviewer ${data.host}::${data.port}` : `The VM is not running: batu vm start ${id}, then connect.`,
    ].join("\n"),
  );
}

async function vmLog(id: string, opts: Options & { head?: boolean; lines: string }): Promise<void> {
  const count = parseCount(opts.lines, "--lines", 1, 1000);
  const log = await ask(() => client(opts).vmLog({ vm_id: id, from: opts.head ? "head" : "tail", count: String(count) }));
  print(log, outputFormat(opts), () => (log.lines.length ? log.lines.join("\n") : "(empty)"));
}
