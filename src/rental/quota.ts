import type { RentalLimits } from "../auth/rental-ledger.js";
import { demandOf } from "../vm/resources.js";
import type { VmSpec } from "../vm/spec.js";
import type { VmRecord } from "../vm/repo.js";

/** A VM's (or a change's) share of what a rental gives. */
export interface QuotaDemand {
  gpus: number;
  vcpus: number;
  memoryBytes: number;
  diskBytes: number;
}

export const demandOfSpec = (spec: VmSpec): QuotaDemand => ({ gpus: spec.gpuCount, ...demandOf(spec) });

/** What `owner`'s tasks among `vms` hold against its rental (a failed creation holds nothing), `except` one. */
export function heldBy(owner: string, vms: readonly Pick<VmRecord, "id" | "owner" | "status" | "spec">[], except?: string): QuotaDemand[] {
  return vms.filter((v) => v.owner === owner && v.id !== except && v.status !== "create error").map((v) => demandOfSpec(v.spec));
}

const GIB = 2 ** 30;

/**
 * Why `demand` more does not fit the renter's rental of the node, given what its other VMs there
 * hold (`held`), or null. DBC's texts for GPUs: a renter of some GPUs uses them (`gpu_count` 0 is
 * for a renter of the whole node) and no more than it rents; the caps on vCPUs, memory and disk are
 * batu's own (refused as the host's own shortage is, `allocate ... failed`).
 */
export function quotaRefusal(limits: RentalLimits, held: readonly QuotaDemand[], demand: QuotaDemand): { field: "gpu_count" | "cpu_cores" | "mem_size" | "disk_size"; message: string } | null {
  const sum = (k: keyof QuotaDemand) => held.reduce((n, d) => n + d[k], 0);
  if (limits.gpus !== null) {
    if (demand.gpus === 0) return { field: "gpu_count", message: "only use the number what you exactly rented: gpu_count 0 is for a renter of the whole node" };
    if (sum("gpus") + demand.gpus > limits.gpus) {
      return { field: "gpu_count", message: `gpu_count exceeds number of leases: ${limits.gpus} rented, ${sum("gpus")} held by your other tasks here` };
    }
  }
  if (limits.cpuCores !== null && sum("vcpus") + demand.vcpus > limits.cpuCores) {
    return { field: "cpu_cores", message: `allocate cpu failed: your rental of this node gives ${limits.cpuCores} vCPUs, ${sum("vcpus")} held by your other tasks` };
  }
  if (limits.memGib !== null && sum("memoryBytes") + demand.memoryBytes > limits.memGib * GIB) {
    return { field: "mem_size", message: `allocate memory failed: your rental of this node gives ${limits.memGib}G, ${sum("memoryBytes") / GIB}G held by your other tasks` };
  }
  if (limits.diskGib !== null && sum("diskBytes") + demand.diskBytes > limits.diskGib * GIB) {
    return { field: "disk_size", message: `allocate disk failed: your rental of this node gives ${limits.diskGib}G of disk, ${Math.round(sum("diskBytes") / GIB)}G promised to your other tasks` };
  }
  return null;
}

/**
 * Why a renter's change of a task from `spec` to `next` does not fit its rental, or null: a renter
 * of some GPUs changes none of GPUs, vCPUs or memory (DBC's rule, its texts); the rental's caps hold
 * with the renter's other tasks on the node (`others`) counted.
 */
export function modifyQuotaRefusal(limits: RentalLimits, spec: VmSpec, next: VmSpec, others: readonly QuotaDemand[]): { field: string; message: string } | null {
  if (limits.gpus !== null) {
    if (next.gpuCount !== spec.gpuCount) return { field: "new_gpu_count", message: "can not modify gpu count" };
    if (next.cpu.cores !== spec.cpu.cores) return { field: "new_cpu_cores", message: "can not modify cpu cores" };
    if (next.memoryMiB !== spec.memoryMiB) return { field: "new_mem_size", message: "can not modify mem size" };
    return null;
  }
  const over = quotaRefusal(limits, others, demandOfSpec(next));
  return over ? { field: `new_${over.field}`, message: over.message } : null;
}

/**
 * Why `vm`, stopped, may not start again under its renter's rental as it is now, or null: a rental
 * changed since (fewer GPUs, a lower cap) counts the VM with the renter's others, as at creation.
 */
export function startQuotaRefusal(limits: RentalLimits, vm: Pick<VmRecord, "id" | "owner" | "spec">, all: readonly Pick<VmRecord, "id" | "owner" | "status" | "spec">[]): { field: string; message: string } | null {
  if (vm.owner === null) return null;
  return quotaRefusal(limits, heldBy(vm.owner, all, vm.id), demandOfSpec(vm.spec));
}

/** Why `moreBytes` of data disk beyond the `heldBytes` the renter's VMs on the node have does not fit its rental, or null. */
export function diskQuotaRefusal(limits: RentalLimits, heldBytes: number, moreBytes: number): string | null {
  if (limits.diskGib === null || heldBytes + moreBytes <= limits.diskGib * GIB) return null;
  return `allocate disk failed: your rental of this node gives ${limits.diskGib}G of disk, ${Math.round(heldBytes / GIB)}G promised to your tasks`;
}

/** The field of a forwarded call by which the master gives a member the renter's rental limits. */
export const GRANT_FIELD = "batu_grant";

/** Rental limits as sent between agents, checked; null when they are not. */
export function parseLimits(v: unknown): RentalLimits | null {
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  const n = (x: unknown): number | null | undefined => (x === null ? null : typeof x === "number" && Number.isInteger(x) && x >= 1 ? x : undefined);
  const [gpus, cpuCores, memGib, diskGib] = [n(o.gpus), n(o.cpuCores), n(o.memGib), n(o.diskGib)];
  if (gpus === undefined || cpuCores === undefined || memGib === undefined || diskGib === undefined) return null;
  // The per-VM caps came later: a master of an earlier version sends none (the operator's default).
  const [diskIops, diskMBps, netMbit] = [n(o.diskIops ?? null), n(o.diskMBps ?? null), n(o.netMbit ?? null)];
  if (diskIops === undefined || diskMBps === undefined || netMbit === undefined) return null;
  return { gpus, cpuCores, memGib, diskGib, diskIops, diskMBps, netMbit };
}
