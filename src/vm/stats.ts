import type { VmStats } from "../api/host-vm.js";
import type { Hypervisor } from "../hypervisor/driver.js";
import type { VmRecord } from "./repo.js";
import type { VmRuntime } from "./runtime.js";
import { vcpus } from "./spec.js";

interface Sample {
  atMs: number;
  vcpuTimeMs: number;
}

/** Live figures of a VM from QMP and /proc; usage % is measured between two calls. */
export class VmStatsReader {
  private readonly last = new Map<string, Sample>();

  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly runtime: VmRuntime,
  ) {}

  /**
   * `measure: false` reads the counters without taking them as the baseline of the next call's usage %
   * (a metrics scrape: /common/vm/stats callers keep theirs).
   */
  async read(vm: VmRecord, opts: { measure?: boolean } = {}): Promise<VmStats> {
    const qmp = this.runtime.qmpOf(vm.id);
    const pid = this.runtime.pidOf(vm.id);
    const base: VmStats = {
      vm_id: vm.id,
      status: vm.status,
      ready: vm.ready,
      uptime_sec: null,
      cpu: { vcpus: vcpus(vm.spec), time_ms: null, usage_percent: null },
      memory: { configured_bytes: vm.spec.memoryMiB * 2 ** 20, used_bytes: null },
      disk: { read_bytes: null, written_bytes: null },
      network: { rx_bytes: null, tx_bytes: null },
    };
    if (!qmp || pid === undefined) return base;
    const s = await this.hypervisor.stats(qmp, pid, [{ id: "net0", kind: "user" }]);
    const now = Date.now();
    const prev = this.last.get(vm.id) ?? { atMs: now - s.uptimeMs, vcpuTimeMs: 0 };
    if (opts.measure !== false) this.last.set(vm.id, { atMs: now, vcpuTimeMs: s.vcpuTimeMs });
    const wallMs = now - prev.atMs;
    const sum = (f: (n: { rxBytes: number | null; txBytes: number | null }) => number | null) => {
      const values = s.nics.map(f);
      return values.every((v) => v === null) ? null : values.reduce<number>((a, v) => a + (v ?? 0), 0);
    };
    return {
      ...base,
      uptime_sec: Math.round(s.uptimeMs / 100) / 10,
      cpu: {
        vcpus: s.vcpuCount,
        time_ms: s.vcpuTimeMs,
        usage_percent: wallMs > 0 ? Math.round(((s.vcpuTimeMs - prev.vcpuTimeMs) / wallMs) * 1000) / 10 : null,
      },
      memory: { configured_bytes: base.memory.configured_bytes, used_bytes: s.rssBytes },
      disk: {
        read_bytes: s.disks.reduce((a, d) => a + d.rdBytes, 0),
        written_bytes: s.disks.reduce((a, d) => a + d.wrBytes, 0),
      },
      network: { rx_bytes: sum((n) => n.rxBytes), tx_bytes: sum((n) => n.txBytes) },
    };
  }

  forget(id: string): void {
    this.last.delete(id);
  }
}
