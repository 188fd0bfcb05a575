import { readAdminToken } from "../../auth/identity.js";
import { HostApiError, HostClient, UnreachableError } from "../../sdk/index.js";
import { UsageError } from "../errors.js";
import { AGENT_FLAGS, parse, parsePort } from "../options.js";

export const usage = `batu vm disk list <vm_id> [--json]
batu vm disk add <vm_id> --size <GiB>
batu vm disk resize <vm_id> <disk> --grow <GiB>
batu vm disk delete <vm_id> <disk>
batu vm snapshot list <vm_id> [--json]
batu vm snapshot create <vm_id> <name> [--desc <text>] [--disks vdb,vdc]
batu vm snapshot restore <vm_id> <name>
batu vm snapshot delete <vm_id> <name>
  [--conf-dir ./conf] [--port 10000]
  A VM's data disks and snapshots, through the running agent (admin token from conf/), live on a
  running VM: a disk added is hot-plugged, resize grows a disk BY --grow GiB, a disk deleted is
  unplugged once the guest releases it; a snapshot of a running VM is taken while it runs on (vda,
  and the data disks --disks names); restore puts a shut-off VM back to a snapshot.`;

const FLAGS = { ...AGENT_FLAGS, json: { type: "boolean" }, size: { type: "string" }, grow: { type: "string" }, desc: { type: "string" }, disks: { type: "string" } } as const;

export async function vmCommand(args: string[]): Promise<void> {
  const [what, sub, ...rest] = args;
  const { values, positionals } = parse(rest, FLAGS);
  const client = clientOf(values);
  const [vmId, second] = positionals;
  if (!vmId) throw new UsageError(`missing <vm_id>\n${usage}`);
  const gib = (flag: "size" | "grow") => {
    const n = Number(values[flag]);
    if (!values[flag] || !Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${flag}: a whole number of GiB, at least 1`);
    return n;
  };
  const named = (what: string) => {
    if (!second) throw new UsageError(`missing <${what}>\n${usage}`);
    return second;
  };
  try {
    if (what === "disk" && sub === "list") {
      const reply = await client.diskList(vmId);
      if (values.json) return console.log(JSON.stringify(reply));
      for (const d of reply.disks) console.log(`${d.name}  ${d.size_bytes === null ? "?" : `${(d.size_bytes / 2 ** 30).toFixed(2)} GiB`}  ${d.file}`);
      return;
    }
    if (what === "disk" && sub === "add") return console.log(`added ${(await client.diskAdd({ vm_id: vmId, size_gib: gib("size") })).name}`);
    if (what === "disk" && sub === "resize") {
      const r = await client.diskResize({ vm_id: vmId, disk: named("disk"), grow_gib: gib("grow") });
      return console.log(`${r.name} is ${(r.size_bytes / 2 ** 30).toFixed(2)} GiB`);
    }
    if (what === "disk" && sub === "delete") {
      await client.diskDelete({ vm_id: vmId, disk: named("disk") });
      return console.log(`deleted ${second}`);
    }
    if (what === "snapshot" && sub === "list") {
      const reply = await client.snapshotList(vmId);
      if (values.json) return console.log(JSON.stringify(reply));
      if (reply.snapshots.length === 0) return console.log("no snapshots");
      for (const s of reply.snapshots) {
        const disks = ["vda", ...s.data_disks.map((d) => d.name)].join(",");
        console.log(`${s.name}  ${s.status}  ${s.created_at}  ${s.image_name}  ${disks}  ${s.description}`);
      }
      return;
    }
    if (what === "snapshot" && sub === "create") {
      const disks = values.disks ? values.disks.split(",").map((d) => d.trim()).filter(Boolean) : [];
      const r = await client.snapshotCreate({ vm_id: vmId, name: named("name"), ...(values.desc ? { description: values.desc } : {}), ...(disks.length ? { disks } : {}) });
      const held = r.snapshot.data_disks.map((d) => d.name);
      return console.log(`snapshot ${r.snapshot.name}: image ${r.snapshot.image_name}${held.length ? ` with ${held.join(", ")}` : ""}`);
    }
    if (what === "snapshot" && sub === "restore") {
      await client.snapshotRestore({ vm_id: vmId, name: named("name") });
      return console.log(`restored ${vmId} to ${second}`);
    }
    if (what === "snapshot" && sub === "delete") {
      await client.snapshotDelete({ vm_id: vmId, name: named("name") });
      return console.log(`deleted ${second}`);
    }
  } catch (e) {
    if (e instanceof HostApiError) throw new UsageError(`refused: ${e.message}`, 1);
    if (e instanceof UnreachableError) throw new UsageError(`no agent answers on port ${values.port}: ${e.message}`, 1);
    throw e;
  }
  throw new UsageError(`unknown vm command: ${[what, sub].filter(Boolean).join(" ") || "(none)"}\n${usage}`);
}

function clientOf(values: { port?: string; "conf-dir"?: string }): HostClient {
  const token = readAdminToken(values["conf-dir"]!);
  if (!token) throw new UsageError(`no admin token in ${values["conf-dir"]}: is this the agent's conf dir?`, 1);
  // Disk and snapshot changes wait for the guest (an unplug) or a copy: a long bound.
  return new HostClient(`127.0.0.1:${parsePort(values.port!)}`, token, 10 * 60_000);
}
