import { prepared, type Db } from "../store/db.js";
import type { VmRecord } from "../vm/repo.js";
import { vcpus } from "../vm/spec.js";

/** One renter's use of this node over a period: what a rental is billed on. */
export interface UsageLine {
  /** The VMs' owner (a renter id), or null for the operator's own VMs. */
  renter: string | null;
  vmHours: number;
  vcpuHours: number;
  /** Memory held, in GiB × hours. */
  memGibHours: number;
  gpuHours: number;
}

const HOUR_MS = 3_600_000;
const round = (n: number) => Math.round(n * 1000) / 1000;

/**
 * Usage records (`vm_usage`): a row for each stretch a VM's QEMU ran, with the vCPUs, memory and GPUs
 * it held, opened when it starts running and closed when it stops or is deleted (rows outlive the
 * VM). After an agent restart, stretches of VMs found not running are closed at that moment (the
 * end is not known closer), those of VMs still running go on.
 */
export class UsageLedger {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * `vm` runs: a stretch opens unless one is open with what it holds now (a restart that took a
   * changed vCPU, memory or GPU count closes the old stretch and opens one with the new).
   */
  running(vm: Pick<VmRecord, "id" | "taskId" | "owner" | "spec">): void {
    const open = prepared(this.db, "SELECT vcpus, memory_mib AS mem, gpus FROM vm_usage WHERE vm_id = ? AND ended_at IS NULL").get(vm.id) as
      | { vcpus: number; mem: number; gpus: number }
      | undefined;
    if (open && open.vcpus === vcpus(vm.spec) && open.mem === vm.spec.memoryMiB && open.gpus === vm.spec.gpuCount) return;
    if (open) this.stopped(vm.id);
    prepared(this.db, "INSERT INTO vm_usage (vm_id, task_id, owner, started_at, vcpus, memory_mib, gpus) VALUES (?, ?, ?, ?, ?, ?, ?)").run(
      vm.id,
      vm.taskId,
      vm.owner,
      this.now().toISOString(),
      vcpus(vm.spec),
      vm.spec.memoryMiB,
      vm.spec.gpuCount,
    );
  }

  /** `vmId` no longer runs: its open stretch closes. */
  stopped(vmId: string): void {
    prepared(this.db, "UPDATE vm_usage SET ended_at = ? WHERE vm_id = ? AND ended_at IS NULL").run(this.now().toISOString(), vmId);
  }

  /** At agent start: stretches open for VMs not in `running` close now; running VMs without one open one. */
  sync(running: readonly Pick<VmRecord, "id" | "taskId" | "owner" | "spec">[]): void {
    this.db.transaction(() => {
      const ids = new Set(running.map((v) => v.id));
      const open = (prepared(this.db, "SELECT vm_id AS id FROM vm_usage WHERE ended_at IS NULL").all() as { id: string }[]).map((r) => r.id);
      for (const id of open) if (!ids.has(id)) this.stopped(id);
      for (const vm of running) this.running(vm);
    })();
  }

  /** Each renter's use between `from` and `to` (stretches clipped to the period; open ones to `to`). */
  report(from: Date, to: Date): UsageLine[] {
    const rows = prepared(
      this.db,
      "SELECT owner, started_at AS s, ended_at AS e, vcpus, memory_mib AS mem, gpus FROM vm_usage WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?)",
    ).all(to.toISOString(), from.toISOString()) as Array<{ owner: string | null; s: string; e: string | null; vcpus: number; mem: number; gpus: number }>;
    const lines = new Map<string | null, UsageLine>();
    for (const r of rows) {
      const start = Math.max(Date.parse(r.s), from.getTime());
      const end = Math.min(r.e === null ? to.getTime() : Date.parse(r.e), to.getTime());
      if (end <= start) continue;
      const h = (end - start) / HOUR_MS;
      const line = lines.get(r.owner) ?? { renter: r.owner, vmHours: 0, vcpuHours: 0, memGibHours: 0, gpuHours: 0 };
      line.vmHours += h;
      line.vcpuHours += h * r.vcpus;
      line.memGibHours += (h * r.mem) / 1024;
      line.gpuHours += h * r.gpus;
      lines.set(r.owner, line);
    }
    return [...lines.values()]
      .map((l) => ({ ...l, vmHours: round(l.vmHours), vcpuHours: round(l.vcpuHours), memGibHours: round(l.memGibHours), gpuHours: round(l.gpuHours) }))
      .sort((a, b) => (a.renter ?? "").localeCompare(b.renter ?? ""));
  }
}

/** A usage report as CSV (RFC 4180; header first), for a billing spreadsheet. */
export function usageCsv(nodeId: string, from: Date, to: Date, lines: readonly UsageLine[]): string {
  const header = "node_id,renter,from,to,vm_hours,vcpu_hours,mem_gib_hours,gpu_hours";
  const rows = lines.map((l) => [nodeId, l.renter ?? "", from.toISOString(), to.toISOString(), l.vmHours, l.vcpuHours, l.memGibHours, l.gpuHours].join(","));
  return `${[header, ...rows].join("\r\n")}\r\n`;
}
