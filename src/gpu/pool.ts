import { prepared, type Db } from "../store/db.js";
import type { GpuUnit } from "./units.js";

/** Not enough usable GPUs free: DBC's `allocate gpu failed`, with why. */
export class GpuAllocationError extends Error {}

/**
 * Which running VM holds which GPU (`vm_gpus`): given at a VM's start, taken back when its QEMU is
 * gone, and trimmed at agent start to the VMs that run (so a SIGKILLed agent or a crashed QEMU never
 * leaks one). Whole GPUs only; a VM's GPUs are taken on one NUMA node when one has enough.
 */
export class GpuPool {
  constructor(private readonly db: Db) {}

  /** The GPUs `vmId` holds, by address. */
  heldBy(vmId: string): string[] {
    return (prepared(this.db, "SELECT pci_address AS a FROM vm_gpus WHERE vm_id = ? ORDER BY pci_address").all(vmId) as { a: string }[]).map((r) => r.a);
  }

  /** Every held GPU → the VM holding it. */
  holders(): Map<string, string> {
    const rows = prepared(this.db, "SELECT pci_address AS a, vm_id AS v FROM vm_gpus").all() as { a: string; v: string }[];
    return new Map(rows.map((r) => [r.a, r.v]));
  }

  /**
   * Gives `vmId` `count` GPUs of `units` (what it holds already counts): usable and free ones, from
   * the NUMA node that fits them most tightly when one can (the roomier nodes stay for larger asks), else across nodes.
   */
  allocate(vmId: string, count: number, units: readonly GpuUnit[]): string[] {
    return this.db.transaction((): string[] => {
      const held = this.heldBy(vmId);
      if (held.length >= count) {
        // Fewer asked than held (its count went down): the rest are free again.
        for (const a of held.slice(count)) prepared(this.db, "DELETE FROM vm_gpus WHERE pci_address = ?").run(a);
        return held.slice(0, count);
      }
      const taken = this.holders();
      const free = units.filter((u) => u.unavailable === null && !taken.has(u.address));
      const need = count - held.length;
      if (free.length < need) {
        throw new GpuAllocationError(`allocate gpu failed: ${need} GPU${need > 1 ? "s" : ""} asked, ${free.length} free for passthrough on this host`);
      }
      const byNode = new Map<number | null, GpuUnit[]>();
      for (const u of free) byNode.set(u.numaNode, [...(byNode.get(u.numaNode) ?? []), u]);
      const fits = [...byNode.values()].filter((l) => l.length >= need).sort((a, b) => a.length - b.length)[0];
      const chosen = (fits ?? free).slice(0, need).map((u) => u.address);
      const insert = prepared(this.db, "INSERT INTO vm_gpus (pci_address, vm_id) VALUES (?, ?)");
      for (const a of chosen) insert.run(a, vmId);
      return [...held, ...chosen].sort();
    })();
  }

  /** `vmId`'s GPUs are free again; the addresses it held. */
  release(vmId: string): string[] {
    const held = this.heldBy(vmId);
    prepared(this.db, "DELETE FROM vm_gpus WHERE vm_id = ?").run(vmId);
    return held;
  }

  /** Keeps only the GPUs of VMs in `running` (agent start: the others' QEMU is gone); the addresses freed. */
  retain(running: ReadonlySet<string>): string[] {
    const freed: string[] = [];
    for (const [address, vmId] of this.holders()) {
      if (running.has(vmId)) continue;
      prepared(this.db, "DELETE FROM vm_gpus WHERE pci_address = ?").run(address);
      freed.push(address);
    }
    return freed;
  }
}
