import { ok } from "../../../api/v1/envelope.js";
import type { VmRecord, VmSummary } from "../../../vm/repo.js";
import type { VmQueries } from "../../../vm/queries.js";
import { VmNotFoundError } from "../../../vm/errors.js";
import type { VersionedMemo } from "../../../store/versioned-memo.js";
import { dataDisksOf, vcpus } from "../../../vm/spec.js";
import { macFor } from "../../../vm/qemu-spec.js";
import { formatGiB as gib } from "../../../lib/units.js";

/** DBC's time format: `2021-12-16 14:48:37` (UTC here). */
export function dbcTime(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "");
}


/** A task in DBC's list shape. */
export function taskSummary(vm: VmSummary) {
  return { task_id: vm.taskId, create_time: dbcTime(vm.createdAt), desc: vm.desc, status: vm.status };
}

/** The content type of a reply body serialized here, as fastify sets it for an object. */
export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/**
 * How many replies are kept: renters' lists (a 1,000-task list is ~130 KiB of JSON) and task details
 * (~650 bytes each, per task and ssh ip).
 */
export const LISTS_KEPT = 256;
export const DETAILS_KEPT = 1024;

/**
 * The `tasks` and `tasks/<id>` replies as JSON bytes (the same as fastify would send for DBC's
 * envelope), kept while the vms table is unchanged (`VmQueries.cache`): a renter's client polls them.
 * What each keeps, per request, on this machine (`npm run bench:api`'s probes, 1,000 tasks):
 * a list is a 3.0 ms SQL read plus 0.56 ms of shape and stringify, against 0.003 ms kept (5,713 req/s
 * kept: 0.56 of bare node:http); a detail is a row read and its spec parsed plus 0.02 ms of shape and
 * stringify, a quarter of the whole request's CPU. Nothing else between the table and the bytes is
 * kept: one cache, of the final bytes.
 */
export class TaskReplies {
  private readonly lists: VersionedMemo<Buffer>;
  private readonly details: VersionedMemo<KeptDetail | undefined>;

  constructor(private readonly reads: VmQueries) {
    this.lists = reads.cache(LISTS_KEPT);
    this.details = reads.cache(DETAILS_KEPT);
  }

  /** `owner`'s task list reply. */
  list(owner: string): Buffer {
    return this.lists.get(owner, () => Buffer.from(JSON.stringify(ok(this.reads.summariesFor(owner).map(taskSummary)))));
  }

  /** The detail reply of `owner`'s task `taskId`, as seen at `sshIp`; another owner's task is not found. */
  async detail(owner: string, taskId: string, sshIp: string): Promise<Buffer> {
    const kept = this.details.get(`${sshIp}\n${owner}\n${taskId}`, () => {
      const vm = this.reads.findFor(owner, taskId);
      if (!vm) return undefined;
      // A record from before batu kept the disk size: read from the disk below (that stores it, so the next one is kept).
      const sized = vm.systemDiskBytes !== null || vm.status === "creating";
      return { vm, body: sized ? detailBytes(vm, sshIp, vm.systemDiskBytes, this.reads.localAddresses(vm)) : null };
    });
    if (!kept) throw new VmNotFoundError(taskId);
    return kept.body ?? detailBytes(kept.vm, sshIp, await this.reads.systemDiskBytes(kept.vm), this.reads.localAddresses(kept.vm));
  }
}

interface KeptDetail {
  vm: VmRecord;
  /** Null when the disk size must be read first. */
  body: Buffer | null;
}

const detailBytes = (vm: VmRecord, sshIp: string, systemDiskBytes: number | null, localAddress: string[]) =>
  Buffer.from(JSON.stringify(ok(taskDetail(vm, sshIp, systemDiskBytes, localAddress))));

/**
 * A task in DBC's detail shape (reference §4.2): `cpu_cores` and `gpu_count` numbers, the rest strings;
 * plus batu's `ready`. Secrets are shown because only the task's renter reaches this.
 */
export function taskDetail(vm: Readonly<VmRecord>, sshIp: string, systemDiskBytes: number | null, localAddress: string[] = []) {
  const { spec } = vm;
  const windows = spec.os === "windows";
  return {
    task_id: vm.taskId,
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
      ...dataDisksOf(spec).map((d) =>
        d.external
          ? { name: d.name, size: "", source_file: spec.dataFileName ?? "" }
          : { name: d.name, size: gib(d.sizeBytes ?? 0), source_file: `${d.name}.qcow2` },
      ),
    ],
    interface: [{ name: "default", type: "virtio", mac_address: macFor(vm.id) }],
    ...(spec.multicast.length ? { multicast: spec.multicast } : {}),
    ...(localAddress.length ? { local_address: localAddress } : {}),
    ...(spec.networkFilters?.length ? { network_filters: spec.networkFilters } : {}),
    ...(spec.publicIp ? { public_ip: spec.publicIp } : {}),
  };
}
