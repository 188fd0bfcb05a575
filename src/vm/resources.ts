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
