import { vcpus, type VmSpec } from "./spec.js";
import { holdsResources, type VmStatus } from "./state.js";

/**
 * Whether a VM fits this host. Pure: the caller passes the host's capacity and what the other VMs
 * already hold; the answer is the first resource that does not fit, in DBC's words.
 */
export interface HostCapacity {
  cpuThreads: number;
  memoryBytes: number;
  diskFreeBytes: number;
  /** vCPUs per host thread the operator allows (1 = no overcommit). */
  cpuOvercommit: number;
  /** Memory kept for the host itself. */
  memoryReserveBytes: number;
}

export interface Demand {
  vcpus: number;
  memoryBytes: number;
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
  if (want.diskBytes > host.diskFreeBytes - committed.diskBytes) {
    const freeGiB = Math.max(0, (host.diskFreeBytes - committed.diskBytes) / 2 ** 30).toFixed(1);
    return { field: "disk", message: `allocate disk failed: ${(want.diskBytes / 2 ** 30).toFixed(1)} GiB asked, ${freeGiB} GiB free` };
  }
  return undefined;
}

/** What a VM of this spec holds while it runs. */
export function demandOf(spec: VmSpec): Demand {
  return { vcpus: vcpus(spec), memoryBytes: spec.memoryMiB * 2 ** 20, diskBytes: spec.dataDiskBytes ?? 0 };
}

/**
 * What the VMs that hold resources (see `holdsResources`) take of the host's CPU and memory, except
 * `exceptId` (a VM about to start again). Disks are counted by the host's free space itself.
 */
export function committed(vms: Iterable<{ id: string; status: VmStatus; spec: VmSpec }>, exceptId?: string): Demand {
  const total: Demand = { vcpus: 0, memoryBytes: 0, diskBytes: 0 };
  for (const vm of vms) {
    if (vm.id === exceptId || !holdsResources(vm.status)) continue;
    const d = demandOf(vm.spec);
    total.vcpus += d.vcpus;
    total.memoryBytes += d.memoryBytes;
  }
  return total;
}

/** What is left for new VMs: the CPU limit (overcommit applied, as `checkFit` does) and memory less the reserve. */
export function freeCapacity(host: HostCapacity, held: Demand): { vcpus: number; memoryBytes: number } {
  return {
    vcpus: Math.max(0, Math.floor(host.cpuThreads * host.cpuOvercommit) - held.vcpus),
    memoryBytes: Math.max(0, host.memoryBytes - host.memoryReserveBytes - held.memoryBytes),
  };
}
