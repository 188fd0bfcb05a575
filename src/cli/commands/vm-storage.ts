/** `batu vm disk ...` and `batu vm snapshot ...`: a VM's data disks and snapshots, live on a running VM. */
import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { ask, hostClient, type RemoteOptions } from "../local-agent.js";
import { withAgentOptions, withRemoteOptions, type AgentOptions } from "../options.js";

interface Options extends AgentOptions, RemoteOptions {
  json?: boolean;
  size?: string;
  grow?: string;
  desc?: string;
  disks?: string;
}

// Disk and snapshot changes wait for the guest (an unplug) or a copy: a long bound.
const client = (opts: Options) => hostClient(opts, 10 * 60_000);

function gib(text: string | undefined, flag: "size" | "grow"): number {
  const n = Number(text);
  if (!text || !Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${flag}: a whole number of GiB, at least 1`);
  return n;
}

export function registerStorage(vm: Command): void {
  const sub = (parent: Command, name: string, description: string) => withRemoteOptions(withAgentOptions(parent.command(name).description(description).argument("<vm_id>")));

  const disk = vm.command("disk").description("a VM's data disks (hot-plugged on a running VM)");
  sub(disk, "list", "the VM's disks")
    .option("--json", "print JSON")
    .action(async (vmId: string, opts: Options) => {
      const reply = await ask(() => client(opts).diskList(vmId));
      if (opts.json) return console.log(JSON.stringify(reply));
      for (const d of reply.disks) console.log(`${d.name}  ${d.size_bytes === null ? "?" : `${(d.size_bytes / 2 ** 30).toFixed(2)} GiB`}  ${d.file}`);
    });
  sub(disk, "add", "add a data disk")
    .option("--size <GiB>", "its size")
    .action(async (vmId: string, opts: Options) => {
      const size = gib(opts.size, "size");
      console.log(`added ${(await ask(() => client(opts).diskAdd({ vm_id: vmId, size_gib: size }))).name}`);
    });
  sub(disk, "resize", "grow a data disk BY --grow GiB")
    .argument("<disk>")
    .option("--grow <GiB>", "how much to add")
    .action(async (vmId: string, name: string, opts: Options) => {
      const grow = gib(opts.grow, "grow");
      const r = await ask(() => client(opts).diskResize({ vm_id: vmId, disk: name, grow_gib: grow }));
      console.log(`${r.name} is ${(r.size_bytes / 2 ** 30).toFixed(2)} GiB`);
    });
  sub(disk, "delete", "delete a data disk (unplugged once the guest releases it)")
    .argument("<disk>")
    .action(async (vmId: string, name: string, opts: Options) => {
      await ask(() => client(opts).diskDelete({ vm_id: vmId, disk: name }));
      console.log(`deleted ${name}`);
    });

  const snapshot = vm.command("snapshot").description("a VM's snapshots (taken live on a running VM)");
  sub(snapshot, "list", "the VM's snapshots")
    .option("--json", "print JSON")
    .action(async (vmId: string, opts: Options) => {
      const reply = await ask(() => client(opts).snapshotList(vmId));
      if (opts.json) return console.log(JSON.stringify(reply));
      if (reply.snapshots.length === 0) return console.log("no snapshots");
      for (const s of reply.snapshots) {
        const disks = ["vda", ...s.data_disks.map((d) => d.name)].join(",");
        console.log(`${s.name}  ${s.status}  ${s.created_at}  ${s.image_name}  ${disks}  ${s.description}`);
      }
    });
  sub(snapshot, "create", "snapshot vda and the data disks --disks names")
    .argument("<name>")
    .option("--desc <text>", "a description")
    .option("--disks <vdb,vdc>", "data disks to hold too")
    .action(async (vmId: string, name: string, opts: Options) => {
      const disks = opts.disks ? opts.disks.split(",").map((d) => d.trim()).filter(Boolean) : [];
      const r = await ask(() => client(opts).snapshotCreate({ vm_id: vmId, name, ...(opts.desc ? { description: opts.desc } : {}), ...(disks.length ? { disks } : {}) }));
      const held = r.snapshot.data_disks.map((d) => d.name);
      console.log(`snapshot ${r.snapshot.name}: image ${r.snapshot.image_name}${held.length ? ` with ${held.join(", ")}` : ""}`);
    });
  sub(snapshot, "restore", "put a shut-off VM back to a snapshot")
    .argument("<name>")
    .action(async (vmId: string, name: string, opts: Options) => {
      await ask(() => client(opts).snapshotRestore({ vm_id: vmId, name }));
      console.log(`restored ${vmId} to ${name}`);
    });
  sub(snapshot, "delete", "delete a snapshot and its image")
    .argument("<name>")
    .action(async (vmId: string, name: string, opts: Options) => {
      await ask(() => client(opts).snapshotDelete({ vm_id: vmId, name }));
      console.log(`deleted ${name}`);
    });
}
