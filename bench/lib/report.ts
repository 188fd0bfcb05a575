import type { BareSample } from "./bare-qemu.js";
import type { BatuSample } from "./batu.js";
import type { LibvirtSample } from "./libvirt.js";
import { ratio, secs, summarize, type Summary } from "./stats.js";

export type System = "batu" | "qemu" | "libvirt";
export type Phase = "sequential" | "concurrent";
export const PHASES: Phase[] = ["sequential", "concurrent"];

export interface Samples {
  batu: Record<Phase, BatuSample[]>;
  qemu: Record<Phase, BareSample[]>;
  libvirt: Record<Phase, LibvirtSample[]>;
  /** ms each delete/destroy took, per system. */
  teardownMs: Record<System, number[]>;
}

export function emptySamples(): Samples {
  return {
    batu: { sequential: [], concurrent: [] },
    qemu: { sequential: [], concurrent: [] },
    libvirt: { sequential: [], concurrent: [] },
    teardownMs: { batu: [], qemu: [], libvirt: [] },
  };
}

type Metric = { key: string; label: string; values: (s: Samples, p: Phase) => number[]; main: boolean };

/** Every figure the bench reports, in ms; `main` ones form the table the brief asks for. */
export const METRICS: Metric[] = [
  { key: "batu_create_running", label: "batu create→running (POST reply)", main: true,
    values: (s, p) => s.batu[p].map((x) => x.running - x.t0) },
  { key: "batu_create_ready", label: "batu create→ready (serial BATU-READY)", main: true,
    values: (s, p) => s.batu[p].map((x) => x.readySerial - x.t0) },
  { key: "qemu_start_ready", label: "bare QEMU overlay+spawn→ready", main: true,
    values: (s, p) => s.qemu[p].map((x) => x.ready - x.t0) },
  { key: "libvirt_start_ready", label: "libvirt overlay+define+start→ready", main: true,
    values: (s, p) => s.libvirt[p].map((x) => x.ready - x.t0) },
  { key: "batu_create_ready_api", label: "batu create→ready:true in list (50 ms poll)", main: false,
    values: (s, p) => s.batu[p].map((x) => x.readyApi - x.t0) },
  { key: "batu_running_ready", label: "batu running→ready (serial)", main: false,
    values: (s, p) => s.batu[p].map((x) => x.readySerial - x.running) },
  { key: "batu_pre_spawn", label: "  └ POST→QEMU exec (API, ports, 3× qemu-img)", main: false,
    values: (s, p) => s.batu[p].flatMap((x) => (x.breakdown ? [x.breakdown.preSpawnMs] : [])) },
  { key: "batu_qemu_daemonize", label: "  └ QEMU -daemonize (machine init)", main: false,
    values: (s, p) => s.batu[p].flatMap((x) => (x.breakdown ? [x.breakdown.qemuDaemonizeMs] : [])) },
  { key: "batu_attach", label: "  └ QMP connect + records", main: false,
    values: (s, p) => s.batu[p].flatMap((x) => (x.breakdown ? [x.breakdown.attachMs] : [])) },
  { key: "batu_reply", label: "  └ last log line→HTTP reply", main: false,
    values: (s, p) => s.batu[p].flatMap((x) => (x.breakdown ? [x.breakdown.replyMs] : [])) },
  { key: "qemu_spawn_ready", label: "bare QEMU spawn→ready", main: false,
    values: (s, p) => s.qemu[p].map((x) => x.ready - x.spawn) },
  { key: "qemu_daemonize", label: "bare QEMU spawn→daemonized", main: false,
    values: (s, p) => s.qemu[p].map((x) => x.daemonized - x.spawn) },
  { key: "libvirt_define", label: "libvirt virsh define", main: false,
    values: (s, p) => s.libvirt[p].map((x) => x.defined - x.define) },
  { key: "libvirt_start", label: "libvirt virsh start", main: false,
    values: (s, p) => s.libvirt[p].map((x) => x.started - x.defined) },
  { key: "libvirt_define_ready", label: "libvirt define+start→ready (no overlay)", main: false,
    values: (s, p) => s.libvirt[p].map((x) => x.ready - x.define) },
];

export type Summaries = Record<string, Record<Phase, Summary>>;

export function summarizeAll(s: Samples): Summaries {
  const out: Summaries = {};
  for (const m of METRICS) out[m.key] = { sequential: summarize(m.values(s, "sequential")), concurrent: summarize(m.values(s, "concurrent")) };
  return out;
}

export interface Target {
  label: string;
  phase: Phase;
  value: number | null;
  limit: string;
  met: boolean | null;
}

export function targets(sum: Summaries): Target[] {
  const med = (k: string, p: Phase) => sum[k]![p].median;
  const out: Target[] = [];
  for (const p of PHASES) {
    const q = ratio(med("batu_create_ready", p), med("qemu_start_ready", p));
    out.push({ label: "batu create→ready / bare QEMU (medians)", phase: p, value: q, limit: "≤ 1.15", met: q === null ? null : q <= 1.15 });
    const l = ratio(med("batu_create_ready", p), med("libvirt_start_ready", p));
    out.push({ label: "batu create→ready / libvirt (medians)", phase: p, value: l, limit: "≤ 0.70", met: l === null ? null : l <= 0.7 });
    for (const stat of ["median", "p90"] as const) {
      const v = sum.batu_create_running![p][stat];
      out.push({ label: `batu create→running ${stat} (s)`, phase: p, value: v === null ? null : v / 1000, limit: "< 1 s", met: v === null ? null : v < 1000 });
    }
  }
  return out;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The text report: main table, details, targets. */
export function formatReport(sum: Summaries, tg: Target[], runs: { sequential: number; concurrent: number }): string {
  const w = 47;
  const head = `${pad("seconds", w)} ${pad(`sequential (n=${runs.sequential})`, 19)} ${pad(`${runs.concurrent} at once`, 19)}`;
  const sub = `${pad("", w)} ${pad("median", 9, true)} ${pad("p90", 9, true)} ${pad("median", 9, true)} ${pad("p90", 9, true)}`;
  const row = (m: Metric) => {
    const s = sum[m.key]!;
    return `${pad(m.label, w)} ${pad(secs(s.sequential.median), 9, true)} ${pad(secs(s.sequential.p90), 9, true)} ${pad(secs(s.concurrent.median), 9, true)} ${pad(secs(s.concurrent.p90), 9, true)}`;
  };
  const line = "─".repeat(w + 40);
  const lines = [line, head, sub, line, ...METRICS.filter((m) => m.main).map(row), line, "details", ...METRICS.filter((m) => !m.main).map(row), line, "targets"];
  for (const t of tg) {
    const v = t.value === null ? "–" : t.value.toFixed(2);
    const mark = t.met === null ? "n/a" : t.met ? "MET" : "NOT MET";
    lines.push(`${pad(`${t.label}, ${t.phase}`, w + 13)} ${pad(v, 6, true)}  ${pad(t.limit, 7)} ${mark}`);
  }
  lines.push(line);
  return lines.join("\n");
}

/** Samples as milliseconds relative to each VM's own t0 (for the JSON record). */
export function relativeSamples(s: Samples): unknown {
  const rel = <T extends { t0: number }>(xs: T[]) =>
    xs.map((x) =>
      Object.fromEntries(
        Object.entries(x).map(([k, v]) => [k, typeof v === "number" && k !== "t0" && v > 1e12 ? Math.round((v - x.t0) * 10) / 10 : v]),
      ),
    );
  const out: Record<string, unknown> = {};
  out.batu = { sequential: rel(s.batu.sequential), concurrent: rel(s.batu.concurrent) };
  out.qemu = { sequential: rel(s.qemu.sequential), concurrent: rel(s.qemu.concurrent) };
  out.libvirt = { sequential: rel(s.libvirt.sequential), concurrent: rel(s.libvirt.concurrent) };
  out.teardownMs = s.teardownMs;
  return out;
}

/** Cross-checks and robustness figures printed under the table (and kept in the JSON). */
export function checks(s: Samples): { lines: string[]; pairedRatios: Record<string, number | null> } {
  const lines: string[] = [];
  const all = [...s.batu.sequential, ...s.batu.concurrent];
  if (all.length) {
    const running = all.filter((x) => x.statusAfterReply === "running").length;
    lines.push(`batu: list status right after the POST reply was "running" for ${running}/${all.length} VMs`);
    const lag = summarize(all.map((x) => x.readyApi - x.readySerial));
    lines.push(`batu: ready:true in the list came ${secs(lag.median)} s (median; max ${secs(lag.max)}) after BATU-READY in the serial log`);
  }
  const bounds = [...all.map((x) => x.readySerialUpperBound), ...[...s.qemu.sequential, ...s.qemu.concurrent, ...s.libvirt.sequential, ...s.libvirt.concurrent].map((x) => x.readyUpperBound)];
  const ub = bounds.filter(Boolean).length;
  if (ub) lines.push(`WARNING: ${ub} ready times are upper bounds (the marker was there at the first look)`);
  // Rounds are interleaved: the ratio within each round cancels slow drifts of the machine.
  const paired = (a: number[], b: number[]) => (a.length && a.length === b.length ? summarize(a.map((x, i) => x / b[i]!)).median : null);
  const batuReady = s.batu.sequential.map((x) => x.readySerial - x.t0);
  const pairedRatios = {
    batu_over_qemu: paired(batuReady, s.qemu.sequential.map((x) => x.ready - x.t0)),
    batu_over_libvirt: paired(batuReady, s.libvirt.sequential.map((x) => x.ready - x.t0)),
    qemu_over_libvirt: paired(s.qemu.sequential.map((x) => x.ready - x.t0), s.libvirt.sequential.map((x) => x.ready - x.t0)),
  };
  const f = (v: number | null) => (v === null ? "–" : v.toFixed(2));
  lines.push(
    `sequential, median of per-round ratios: batu/bare QEMU ${f(pairedRatios.batu_over_qemu)}, batu/libvirt ${f(pairedRatios.batu_over_libvirt)}, ` +
      `bare QEMU/libvirt ${f(pairedRatios.qemu_over_libvirt)} (the floor for batu/libvirt)`,
  );
  const td = (k: System) => secs(summarize(s.teardownMs[k]).median);
  lines.push(`teardown (delete / kill / destroy+undefine), median: batu ${td("batu")} s, bare QEMU ${td("qemu")} s, libvirt ${td("libvirt")} s`);
  return { lines, pairedRatios };
}
