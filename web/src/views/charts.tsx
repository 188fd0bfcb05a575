import { useEffect, useState } from "preact/hooks";
import type { VmStats } from "../../../src/api/host-vm.js";
import type { HostClient } from "../api/host.js";

/**
 * Sampled in the page while the view is open (every SAMPLE_MS, the last WINDOW_SAMPLES kept), not
 * in a ring buffer on the agent: the agent then spends nothing on VMs nobody watches, and holds no
 * per-VM history that would need bounding and cleaning up. The cost is that a chart starts empty.
 * Rates come from the counters' differences here (vCPU time, disk and network bytes), so two open
 * pages never disturb each other's figures (the server's usage_percent is "since the previous call").
 */
const SAMPLE_MS = 2000;
const WINDOW_SAMPLES = 150; // 5 minutes

interface Point {
  at: number;
  cpuPercent: number | null;
  memoryMiB: number | null;
  diskMiBs: number | null;
  netKiBs: number | null;
}

function pointFrom(prev: { at: number; s: VmStats } | undefined, at: number, s: VmStats): Point {
  const seconds = prev ? (at - prev.at) / 1000 : 0;
  const rate = (now: number | null, before: number | null | undefined) =>
    prev && seconds > 0 && now !== null && before !== null && before !== undefined ? Math.max(0, now - before) / seconds : null;
  const cpuMs = rate(s.cpu.time_ms, prev?.s.cpu.time_ms);
  const disk = rate(
    s.disk.read_bytes === null || s.disk.written_bytes === null ? null : s.disk.read_bytes + s.disk.written_bytes,
    prev && prev.s.disk.read_bytes !== null && prev.s.disk.written_bytes !== null ? prev.s.disk.read_bytes + prev.s.disk.written_bytes : null,
  );
  const net = rate(
    s.network.rx_bytes === null || s.network.tx_bytes === null ? null : s.network.rx_bytes + s.network.tx_bytes,
    prev && prev.s.network.rx_bytes !== null && prev.s.network.tx_bytes !== null ? prev.s.network.rx_bytes + prev.s.network.tx_bytes : null,
  );
  return {
    at,
    cpuPercent: cpuMs === null ? null : cpuMs / 10,
    memoryMiB: s.memory.used_bytes === null ? null : s.memory.used_bytes / 2 ** 20,
    diskMiBs: disk === null ? null : disk / 2 ** 20,
    netKiBs: net === null ? null : net / 1024,
  };
}

export function VmCharts({ client, vmId }: { client: HostClient; vmId: string }) {
  const [points, setPoints] = useState<Point[]>([]);
  const [error, setError] = useState("");
  useEffect(() => {
    let prev: { at: number; s: VmStats } | undefined;
    let stopped = false;
    const sample = async () => {
      try {
        const s = await client.stats(vmId);
        const at = Date.now();
        if (stopped) return;
        const point = pointFrom(prev, at, s);
        prev = { at, s };
        setPoints((p) => [...p, point].slice(-WINDOW_SAMPLES));
        setError("");
      } catch (e) {
        setError((e as Error).message);
      }
    };
    void sample();
    const timer = setInterval(sample, SAMPLE_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [client, vmId]);
  return (
    <div class="charts">
      {error && <p class="error">{error}</p>}
      <Chart title="CPU" unit="% of one vCPU" values={points.map((p) => p.cpuPercent)} />
      <Chart title="Memory (QEMU resident)" unit="MiB" values={points.map((p) => p.memoryMiB)} />
      <Chart title="Disk I/O" unit="MiB/s" values={points.map((p) => p.diskMiBs)} />
      <Chart title="Network" unit="KiB/s" values={points.map((p) => p.netKiBs)} none="no counter for NAT (user-mode) NICs" />
    </div>
  );
}

/** A line over the last samples, scaled to its maximum. */
function Chart({ title, unit, values, none }: { title: string; unit: string; values: Array<number | null>; none?: string }) {
  const known = values.filter((v): v is number => v !== null);
  const last = known.at(-1);
  const max = Math.max(1e-9, ...known);
  const w = 300;
  const h = 80;
  // The first minute fills the width; from then on the line scrolls, up to the whole window.
  const step = w / (Math.max(values.length, 30) - 1);
  const line = values
    .map((v, i) => (v === null ? null : `${(i * step).toFixed(1)},${(h - (v / max) * (h - 4) - 2).toFixed(1)}`))
    .filter(Boolean)
    .join(" ");
  return (
    <figure class="chart">
      <figcaption>
        {title}: <strong>{last === undefined ? "—" : last.toFixed(1)}</strong> {unit}
        {known.length === 0 && values.length > 1 && none ? <span class="muted"> ({none})</span> : null}
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none">
        <polyline points={line} fill="none" stroke="currentColor" stroke-width="2" vector-effect="non-scaling-stroke" />
      </svg>
    </figure>
  );
}
