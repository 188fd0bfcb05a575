import { ok } from "../../../api/v1/envelope.js";
import type { VmRecord, VmSummary } from "../../../vm/repo.js";
import { vcpus } from "../../../vm/spec.js";
import { macFor } from "../../../vm/qemu-spec.js";

/** DBC's time format: `2021-12-16 14:48:37` (UTC here). */
export function dbcTime(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "");
}

const gib = (bytes: number) => `${Math.round((bytes / 2 ** 30) * 100) / 100}G`;

/** A task in DBC's list shape. */
export function taskSummary(vm: VmSummary) {
  return { task_id: vm.id, create_time: dbcTime(vm.createdAt), desc: vm.desc, status: vm.status };
}

/** The content type of a reply body serialized here, as fastify sets it for an object. */
export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

// The `tasks` reply of each frozen summaries array: the VM service hands out the same array while a
// renter's list is unchanged, so its bytes are built once (shape + stringify of 1,000 tasks ≈ 0.5 ms).
const listBodies = new WeakMap<readonly VmSummary[], Buffer>();

/** The `tasks` reply, DBC's envelope of the list, as JSON bytes: the same as fastify would send for it. */
export function taskListBody(summaries: readonly VmSummary[]): Buffer {
  const kept = listBodies.get(summaries);
  if (kept) return kept;
  const body = Buffer.from(JSON.stringify(ok(summaries.map(taskSummary))));
  // Only an array nobody can change may stand for its bytes.
  if (Object.isFrozen(summaries)) listBodies.set(summaries, body);
  return body;
}

// The `tasks/<id>` reply of each frozen record (VmService.getFor hands out the same one while vms is
// unchanged), for the ssh ip and disk size it was last built with: shape + stringify ≈ 20 µs a call.
const detailBodies = new WeakMap<Readonly<VmRecord>, { sshIp: string; systemDiskBytes: number | null; body: Buffer }>();

/** The `tasks/<id>` reply, DBC's envelope of the detail, as JSON bytes: the same as fastify would send for it. */
export function taskDetailBody(vm: Readonly<VmRecord>, sshIp: string, systemDiskBytes: number | null): Buffer {
  const kept = detailBodies.get(vm);
  if (kept && kept.sshIp === sshIp && kept.systemDiskBytes === systemDiskBytes) return kept.body;
  const body = Buffer.from(JSON.stringify(ok(taskDetail(vm, sshIp, systemDiskBytes))));
  // Only a record nobody can change may stand for its bytes.
  if (Object.isFrozen(vm) && Object.isFrozen(vm.spec) && Object.isFrozen(vm.spec.ports)) detailBodies.set(vm, { sshIp, systemDiskBytes, body });
  return body;
}

/**
 * A task in DBC's detail shape (reference §4.2): `cpu_cores` and `gpu_count` numbers, the rest strings;
 * plus batu's `ready`. Secrets are shown because only the task's renter reaches this.
 */
export function taskDetail(vm: Readonly<VmRecord>, sshIp: string, systemDiskBytes: number | null) {
  const { spec } = vm;
  const windows = spec.os === "windows";
  return {
    task_id: vm.id,
    os: spec.os,
    ssh_ip: sshIp,
    ...(windows ? { rdp_port: String(spec.ports.rdp ?? "") } : { ssh_port: String(spec.ports.ssh ?? "") }),
    user_name: spec.loginUser,
    login_password: spec.loginPassword,
    cpu_cores: vcpus(spec),
    gpu_count: spec.gpuCount,
    mem_size: `${Math.round((spec.memoryMiB / 1024) * 100) / 100}G`,
    disk_system: systemDiskBytes === null ? "" : gib(systemDiskBytes),
    vnc_port: String(spec.ports.vnc),
    vnc_password: spec.vncPassword,
    create_time: dbcTime(vm.createdAt),
    desc: spec.desc,
    status: vm.status,
    ready: vm.ready,
    image_name: vm.imageName,
    custom_port: spec.ports.custom.map((f) => `${f.proto},${f.hostPort}:${f.guestPort}`),
    disks: [
      { name: "vda", size: systemDiskBytes === null ? "" : gib(systemDiskBytes), source_file: "vda.qcow2" },
      ...(spec.dataFileName
        ? [{ name: "vdb", size: "", source_file: spec.dataFileName }]
        : spec.dataDiskBytes
          ? [{ name: "vdb", size: gib(spec.dataDiskBytes), source_file: "vdb.qcow2" }]
          : []),
    ],
    interface: [{ name: "default", type: "virtio", mac_address: macFor(vm.id) }],
    ...(spec.multicast.length ? { multicast: spec.multicast } : {}),
  };
}
