import { vcpus, type VmSpec } from "./spec.js";
import { holdsResources, type VmStatus } from "./state.js";

/**
 * Whether a VM fits this host. Pure: the caller passes the host's capacity and what the other VMs
 * already hold; the answer is the first resource that does not fit, in DBC's words.
 */
export interface HostCapacity {
  cpuThreads: number;
  memoryBytes: number;
  /** The data dir's file system: its size, and what is free on it now. */
  diskTotalBytes: number;
  diskFreeBytes: number;
  /**
   * How many times the file system's size the VMs' disks may be promised in all (1 = every byte a
   * guest may write exists). Thin disks take space only as guests write: a ratio above 1 bets that
   * they will not all fill up.
   */
  diskOvercommit: number;
  /** vCPUs per host thread the operator allows (1 = no overcommit). */
  cpuOvercommit: number;
  /** Memory kept for the host itself. */
  memoryReserveBytes: number;
  /** The most disk one renter's VMs may be promised in all on this host (`renter_disk_quota_gib`); absent or null: no quota. */
  renterDiskQuotaBytes?: number | null;
}

export interface Demand {
  vcpus: number;
  memoryBytes: number;
  /** Disk bytes promised: what the VM's own disks may grow to (its system disk and its data disk). */
  diskBytes: number;
}

export interface Refusal {
  field: "cpu" | "memory" | "disk";
  message: string;
}

export function checkFit(host: HostCapacity, committed: Demand, want: Demand): Refusal | undefined {
  const cpuLimit = Math.floor(host.cpuThreads * host.cpuOvercommit);
  if (committed.vcpus + want.vcpus > cpuLimit) {
    return {
      field: "cpu",
      message: `allocate cpu failed: ${want.vcpus} vCPUs asked, ${Math.max(0, cpuLimit - committed.vcpus)} of ${cpuLimit} free`,
    };
  }
  const memLimit = host.memoryBytes - host.memoryReserveBytes;
  if (committed.memoryBytes + want.memoryBytes > memLimit) {
    const freeMiB = Math.max(0, Math.floor((memLimit - committed.memoryBytes) / 2 ** 20));
    return { field: "memory", message: `allocate mem failed: ${Math.floor(want.memoryBytes / 2 ** 20)} MiB asked, ${freeMiB} MiB free` };
  }
  const gib = (bytes: number) => (Math.max(0, bytes) / 2 ** 30).toFixed(1);
  // Space to create it in now, and a promise that all disks together stay within the operator's ratio.
  if (want.diskBytes > host.diskFreeBytes) {
    return { field: "disk", message: `allocate disk failed: ${gib(want.diskBytes)} GiB asked, ${gib(host.diskFreeBytes)} GiB free` };
  }
  const diskLimit = Math.floor(host.diskTotalBytes * host.diskOvercommit);
  // Asking for no disk (a start, a new size) is never refused for what others were promised.
  if (want.diskBytes > 0 && committed.diskBytes + want.diskBytes > diskLimit) {
    return {
      field: "disk",
      message: `allocate disk failed: ${gib(want.diskBytes)} GiB asked, ${gib(diskLimit - committed.diskBytes)} of ${gib(diskLimit)} GiB left to promise`,
    };
  }
  return undefined;
}

/**
 * What a VM of this spec holds while it runs, and the disk a new one promises (its data disk; an
 * operator's data file is not the VM's to grow).
 */
export function demandOf(spec: VmSpec): Demand {
  const added = (spec.extraDisks ?? []).reduce((n, d) => n + d.sizeBytes, 0);
  return { vcpus: vcpus(spec), memoryBytes: spec.memoryMiB * 2 ** 20, diskBytes: (spec.dataFileName ? 0 : (spec.dataDiskBytes ?? 0)) + added };
}

/** The disk a VM that exists has been promised: its system disk's size and its data disk's. */
function promisedDisk(vm: { status: VmStatus; spec: VmSpec; systemDiskBytes?: number | null }): number {
  // A failed creation kept its record, not its disks.
  if (vm.status === "create error") return 0;
  return (vm.systemDiskBytes ?? 0) + demandOf(vm.spec).diskBytes;
}

/**
 * Refuses `bytes` more disk for a VM of `owner` (a disk added, grown or brought back): beyond the
 * host's free and promisable disk, or the owner's quota. The one check of a disk change's room.
 */
export function checkDiskRoom(
  host: HostCapacity,
  vms: ReadonlyArray<{ id: string; owner: string | null; status: VmStatus; spec: VmSpec; systemDiskBytes?: number | null }>,
  owner: string | null,
  bytes: number,
): Refusal | undefined {
  return checkFit(host, committed(vms), { vcpus: 0, memoryBytes: 0, diskBytes: bytes }) ?? checkRenterDisk(host, vms, owner, bytes);
}

/**
 * Refuses `wantBytes` more disk for `owner`'s VMs beyond the operator's per-renter quota. The
 * operator's own VMs (owner null) have none.
 */
export function checkRenterDisk(
  host: HostCapacity,
  vms: Iterable<{ owner: string | null; status: VmStatus; spec: VmSpec; systemDiskBytes?: number | null }>,
  owner: string | null,
  wantBytes: number,
): Refusal | undefined {
  const quota = host.renterDiskQuotaBytes;
  if (owner === null || quota === undefined || quota === null || wantBytes <= 0) return undefined;
  let held = 0;
  for (const vm of vms) if (vm.owner === owner) held += promisedDisk(vm);
  if (held + wantBytes <= quota) return undefined;
  const gib = (bytes: number) => (Math.max(0, bytes) / 2 ** 30).toFixed(1);
  return {
    field: "disk",
    message: `allocate disk failed: the renter's disk quota is ${gib(quota)} GiB, ${gib(held)} GiB held, ${gib(wantBytes)} GiB more asked`,
  };
}

/**
 * What the VMs take of the host, except `exceptId` (a VM about to start again): the CPU and memory
 * of those that hold resources (see `holdsResources`), and the disks of every VM that has them
 * (a shut-off VM keeps its disks).
 */
export function committed(vms: Iterable<{ id: string; status: VmStatus; spec: VmSpec; systemDiskBytes?: number | null }>, exceptId?: string): Demand {
  const total: Demand = { vcpus: 0, memoryBytes: 0, diskBytes: 0 };
  for (const vm of vms) {
    if (vm.id === exceptId) continue;
    total.diskBytes += promisedDisk(vm);
    if (!holdsResources(vm.status)) continue;
    const d = demandOf(vm.spec);
    total.vcpus += d.vcpus;
    total.memoryBytes += d.memoryBytes;
  }
  return total;
}

/** What is left for new VMs: as `checkFit` counts it (overcommit applied, memory reserve kept, disk promised). */
export function freeCapacity(host: HostCapacity, held: Demand): { vcpus: number; memoryBytes: number; diskBytes: number } {
  return {
    vcpus: Math.max(0, Math.floor(host.cpuThreads * host.cpuOvercommit) - held.vcpus),
    memoryBytes: Math.max(0, host.memoryBytes - host.memoryReserveBytes - held.memoryBytes),
    diskBytes: Math.max(0, Math.min(host.diskFreeBytes, Math.floor(host.diskTotalBytes * host.diskOvercommit) - held.diskBytes)),
  };
}
