import type { RentalLimits } from "../auth/rental-ledger.js";
import type { DiskThrottle } from "../hypervisor/qemu/spec.js";
import type { VmSpec } from "./spec.js";

/**
 * A VM's caps on disk I/O and network bandwidth. Null: no cap. Kept with the VM (VmSpec.io) as its
 * renter's grant gave them; where the grant gives none, the operator's defaults (config.json
 * `vm_disk_iops`, `vm_disk_mbps`, `vm_net_mbit`) apply, read at each boot.
 */
export interface IoLimits {
  /** Reads and writes per second, all the VM's disks together. */
  diskIops: number | null;
  /** MB/s (10^6 bytes) read and written, all its disks together. */
  diskMBps: number | null;
  /** Megabits per second each way, on each of its taps. */
  netMbit: number | null;
}

export const NO_IO_LIMITS: IoLimits = Object.freeze({ diskIops: null, diskMBps: null, netMbit: null });

/** What a grant sets for its renter's VMs (null where it leaves the operator's default), or undefined: nothing. */
export function ioLimitsOfGrant(limits: RentalLimits | undefined): IoLimits | undefined {
  if (!limits || (limits.diskIops === null && limits.diskMBps === null && limits.netMbit === null)) return undefined;
  return { diskIops: limits.diskIops, diskMBps: limits.diskMBps, netMbit: limits.netMbit };
}

/** `spec` with the caps `grant` sets now in place of those it holds, or null when they are the same. */
export function withGrantIo(spec: VmSpec, grant: RentalLimits): VmSpec | null {
  const io = ioLimitsOfGrant(grant);
  if (JSON.stringify(io) === JSON.stringify(spec.io)) return null;
  const { io: _previous, ...rest } = spec;
  return io ? { ...rest, io } : rest;
}

/** The VM's own caps where it has them, the operator's defaults elsewhere. */
export function effectiveIoLimits(own: IoLimits | undefined, defaults: IoLimits): IoLimits {
  return {
    diskIops: own?.diskIops ?? defaults.diskIops,
    diskMBps: own?.diskMBps ?? defaults.diskMBps,
    netMbit: own?.netMbit ?? defaults.netMbit,
  };
}

/** The QEMU throttle group every disk of one VM shares: the cap is the VM's, not each disk's. */
export const VM_THROTTLE_GROUP = "batu-vm";

/** The throttle QEMU applies to each of the VM's disks (in one group), or null for none. */
export function diskThrottleOf(limits: IoLimits): DiskThrottle | null {
  if (limits.diskIops === null && limits.diskMBps === null) return null;
  return { iops: limits.diskIops ?? 0, bytesPerSec: (limits.diskMBps ?? 0) * 1_000_000, group: VM_THROTTLE_GROUP };
}
