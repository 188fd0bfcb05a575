/** Figures of bench/group.ts: latency summaries, the printed table, the findings under it. */
import type { BeatSample } from "./group-sim.js";
import type { RoutedRun } from "./group-routed.js";
import { quantile } from "./stats.js";

/** A latency sample summarized, ms. */
export interface Lat {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export function lat(xs: readonly number[]): Lat {
  return {
    n: xs.length,
    p50: quantile(xs, 0.5),
    p99: quantile(xs, 0.99),
    max: xs.length ? Math.max(...xs) : null,
    mean: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null,
  };
}

/** One measured window of heartbeats: what the members saw, what it cost the master and the bench. */
export interface BeatWindow {
  label: string;
  seconds: number;
  latency: Lat;
  /** The master's own handling time of the window's heartbeats (fastify's responseTime, its log). */
  masterHandling: Lat;
  beats: number;
  beatsPerS: number;
  errors: number;
  /** "HTTP 401: reason" → count. */
  errorKinds: Record<string, number>;
  /** Members that sent no successful beat in the window. */
  silentMembers: number;
  /** Master CPU over the window, % of one CPU (user + system). */
  masterCpuPct: number;
  /** The master's CPU before any simulated member beat (the real member's beats only), % of one CPU. */
  masterIdleCpuPct: number;
  /** Master CPU above that idle level per accepted beat, ms (list calls included in the window that has them). */
  masterCpuMsPerBeat: number;
  /** The bench process (the simulated members and samplers), % of one CPU. */
  benchCpuPct: number;
  /** Every other process of the machine (other people's work), % of one CPU: the noise under the figures. */
  othersCpuPct: number;
  /** The bench's event-loop delay p99, ms: how late its timers and replies were handled. */
  benchLoopDelayP99Ms: number;
  /** Bytes the master appended to its log per beat. */
  masterLogBytesPerBeat: number;
}

export function beatWindow(
  label: string,
  samples: BeatSample[],
  members: number,
  cost: { seconds: number; masterCpuS: number; masterIdleCpuPct: number; othersCpuS: number; benchCpuS: number; loopDelayP99Ms: number; masterLogBytes: number; handlingMs: number[] },
): BeatWindow {
  const ok = samples.filter((s) => s.error === null);
  const errorKinds: Record<string, number> = {};
  for (const s of samples) {
    if (!s.error) continue;
    const k = `${s.error.status ? `HTTP ${s.error.status}` : "no reply"}: ${s.error.message.slice(0, 120)}`;
    errorKinds[k] = (errorKinds[k] ?? 0) + 1;
  }
  return {
    label,
    seconds: cost.seconds,
    latency: lat(ok.map((s) => s.ms)),
    masterHandling: lat(cost.handlingMs),
    beats: samples.length,
    beatsPerS: samples.length / cost.seconds,
    errors: samples.length - ok.length,
    errorKinds,
    silentMembers: members - new Set(ok.map((s) => s.member)).size,
    masterCpuPct: (cost.masterCpuS / cost.seconds) * 100,
    masterIdleCpuPct: cost.masterIdleCpuPct,
    masterCpuMsPerBeat: ok.length ? ((cost.masterCpuS - (cost.masterIdleCpuPct / 100) * cost.seconds) * 1000) / ok.length : NaN,
    benchCpuPct: (cost.benchCpuS / cost.seconds) * 100,
    othersCpuPct: (cost.othersCpuS / cost.seconds) * 100,
    benchLoopDelayP99Ms: cost.loopDelayP99Ms,
    masterLogBytesPerBeat: samples.length ? cost.masterLogBytes / samples.length : NaN,
  };
}

/** The same beats answered by a server that does nothing else (bench/group.ts beatFloors). */
export interface BeatFloor {
  kind: "node:http" | "fastify";
  seconds: number;
  beats: number;
  errors: number;
  /** The floor server's CPU over the window, % of one CPU. */
  cpuPct: number;
  cpuMsPerBeat: number;
  latency: Lat;
}

export interface ListFigures {
  latency: Lat;
  masterHandling: Lat;
  everyMs: number;
  replyBytes: number;
  /** Master CPU per call, ms, from a burst of calls in a row with the members stopped. */
  cpuMsPerCall: number;
  members: number;
  /** Members by state in the last reply. */
  states: Record<string, number>;
}

export interface RoutedFigures {
  label: string;
  direct: Lat;
  routed: Lat;
  ratioP50: number;
  ratioP99: number;
  addedP50Ms: number;
  /** Median of (routed − direct) over the call pairs: the added latency, robust to the machine's drifts. */
  pairedAddedMs: number;
  replyBytes: RoutedRun["replyBytes"];
  sameReply: boolean;
  /** Each agent's own handling per call (its log): the master for routed calls, the member both ways. */
  handling: { master: Lat; memberDirect: Lat; memberRouted: Lat };
  /** The direct call through a bare relay (one hop, no checks): the floor of routing. */
  relayed: Lat;
  /** Median of (relayed − direct) over the rounds: what the hop alone adds. */
  pairedRelayAddedMs: number;
}

export function routedFigures(label: string, r: RoutedRun): RoutedFigures {
  const direct = lat(r.direct);
  const routed = lat(r.routed);
  return {
    label,
    direct,
    routed,
    ratioP50: routed.p50! / direct.p50!,
    ratioP99: routed.p99! / direct.p99!,
    addedP50Ms: routed.p50! - direct.p50!,
    pairedAddedMs: quantile(r.routed.map((x, i) => x - r.direct[i]!), 0.5)!,
    replyBytes: r.replyBytes,
    sameReply: r.sameReply,
    handling: { master: lat(r.handling.master), memberDirect: lat(r.handling.memberDirect), memberRouted: lat(r.handling.memberRouted) },
    relayed: lat(r.relayed),
    pairedRelayAddedMs: quantile(r.relayed.map((x, i) => x - r.direct[i]!), 0.5)!,
  };
}

const f = (v: number | null | undefined, d = 2) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(d));
const cells = (l: Lat) => [f(l.p50), f(l.p99), f(l.max)].map((c) => c.padStart(10)).join("");

export function formatReport(o: {
  members: number;
  intervalMs: number;
  /** The wait the master asks between beats (beat-pacing.ts), ± 25 %. */
  pacedMs: number;
  windows: BeatWindow[];
  floors: BeatFloor[];
  list: ListFigures;
  routed: RoutedFigures[];
}): string {
  const line = "─".repeat(100);
  const out = [
    line,
    `group: 1 master, ${o.members} simulated members + 1 real member agent; a heartbeat every ${o.intervalMs} ms per member` +
      (o.pacedMs > o.intervalMs ? `, paced by the master to every ${o.pacedMs} ms ± 25 % (the floors: every ${o.pacedMs} ms)` : ""),
    `${"".padEnd(50)}${"n".padStart(8)}${["p50 ms", "p99 ms", "max ms"].map((h) => h.padStart(10)).join("")}   errors   master CPU`,
    line,
  ];
  for (const w of o.windows) {
    out.push(
      `${`heartbeat, ${w.label} (${w.seconds.toFixed(0)} s)`.padEnd(50)}${String(w.latency.n).padStart(8)}${cells(w.latency)}${String(w.errors).padStart(9)}` +
        `   ${f(w.masterCpuPct, 1).padStart(5)} %`,
    );
    out.push(`${"  master's handling (its log)".padEnd(50)}${String(w.masterHandling.n).padStart(8)}${cells(w.masterHandling)}`);
  }
  for (const fl of o.floors) {
    out.push(`${`heartbeat floor: bare ${fl.kind} (${fl.seconds.toFixed(0)} s)`.padEnd(50)}${String(fl.latency.n).padStart(8)}${cells(fl.latency)}${String(fl.errors).padStart(9)}   ${f(fl.cpuPct, 1).padStart(5)} %`);
  }
  out.push(`${`group/list (${o.list.members} members, ${f(o.list.replyBytes / 1024, 0)} KiB), every ${o.list.everyMs} ms`.padEnd(50)}${String(o.list.latency.n).padStart(8)}${cells(o.list.latency)}`);
  out.push(`${"  master's handling (its log)".padEnd(50)}${String(o.list.masterHandling.n).padStart(8)}${cells(o.list.masterHandling)}`);
  out.push(line);
  out.push(`${"tasks/<id>, sequential".padEnd(34)}${"direct on member".padStart(22)}${"routed via master".padStart(22)}   routed/direct      added`);
  out.push(`${"".padEnd(34)}${["p50 ms", "p99 ms", "p50 ms", "p99 ms"].map((h) => h.padStart(11)).join("")}   ${"p50".padStart(5)}  ${"p99".padStart(5)}   p50 ms`);
  for (const r of o.routed) {
    const c = [r.direct.p50, r.direct.p99, r.routed.p50, r.routed.p99].map((v) => f(v).padStart(11)).join("");
    out.push(`${`${r.label} (n=${r.direct.n} each)`.padEnd(34)}${c}   ${f(r.ratioP50).padStart(5)}  ${f(r.ratioP99).padStart(5)}   ${f(r.addedP50Ms).padStart(6)}`);
  }
  out.push(line);
  return out.join("\n");
}

/** The lines under the table: costs per beat, the load generator's own share, checks. */
export function formatDetails(o: {
  windows: BeatWindow[];
  floors: BeatFloor[];
  list: ListFigures;
  routed: RoutedFigures[];
  cpus: number;
  join: Lat;
  signature?: { signUs: number; verifyUs: number };
}): string[] {
  const out: string[] = [];
  for (const w of o.windows) {
    out.push(
      `${w.label}: ${w.beats} beats (${f(w.beatsPerS, 1)}/s), master ${f(w.masterCpuPct, 1)} % of one CPU (idle ${f(w.masterIdleCpuPct, 1)} %): ${f(w.masterCpuMsPerBeat, 3)} ms CPU per beat above idle, ` +
        `log ${f(w.masterLogBytesPerBeat, 0)} B per beat; members silent in the window: ${w.silentMembers}; ` +
        `the bench (all simulated members + samplers) ${f(w.benchCpuPct, 1)} % of one CPU, event-loop delay p99 ${f(w.benchLoopDelayP99Ms)} ms; ` +
        `other processes of the machine ${f(w.othersCpuPct, 0)} % of one CPU`,
    );
    for (const [k, n] of Object.entries(w.errorKinds)) out.push(`  ${n} × ${k}`);
  }
  const beatsOnly = o.windows[0];
  for (const fl of o.floors) {
    const ratio = beatsOnly ? ` (batu: ${f(beatsOnly.masterCpuMsPerBeat / fl.cpuMsPerBeat, 1)}× this floor)` : "";
    out.push(
      `heartbeat floor, bare ${fl.kind} answering the same reply to the same beats: ${f(fl.cpuPct, 1)} % of one CPU, ${f(fl.cpuMsPerBeat, 3)} ms CPU per beat${ratio}`,
    );
  }
  const quietest = o.windows[0];
  if (quietest) {
    const w = quietest;
    out.push(
      `master log: ${f(w.masterLogBytesPerBeat, 0)} B per heartbeat at debug level (the bench's setting, to read handling times) → ` +
        `${f((w.masterLogBytesPerBeat * w.beatsPerS * 86_400) / 2 ** 30, 2)} GiB a day at this group size; at the default info level a heartbeat that succeeds logs nothing`,
    );
  }
  out.push(`group/list: ${f(o.list.cpuMsPerCall)} ms master CPU per call of ${o.list.members} members (calls in a row, members stopped)`);
  out.push(`group/list states in the last reply: ${JSON.stringify(o.list.states)}`);
  out.push(`joins of the simulated members (bearer join, 16 at a time): p50 ${f(o.join.p50)} ms, p99 ${f(o.join.p99)} ms`);
  for (const r of o.routed) {
    out.push(
      `tasks/<id> ${r.label}: reply ${r.replyBytes.direct} B direct, ${r.replyBytes.routed} B routed (${r.sameReply ? "the same bytes" : "DIFFERENT bytes"}); ` +
        `routing adds ${f(r.addedP50Ms)} ms at p50, ${f(r.pairedAddedMs)} ms as the median of per-pair differences; ` +
        `a bare node:http relay to the member's TLS port (one hop, no checks: the floor) adds ${f(r.pairedRelayAddedMs)} ms ` +
        `(p50 ${f(r.relayed.p50)} ms), so batu's routing costs ${f(r.pairedAddedMs - r.pairedRelayAddedMs)} ms over the floor`,
    );
    const h = r.handling;
    const sig = o.signature;
    out.push(
      `  where (p50 of each agent's own handling, its log): the member takes ${f(h.memberDirect.p50)} ms for a direct call, ` +
        `${f(h.memberRouted.p50)} ms for a routed one (+${f(h.memberRouted.p50! - h.memberDirect.p50!)} ms: the master's signature checked` +
        `${sig ? `, sr25519 verify ≈ ${f(sig.verifyUs / 1000)} ms here` : ""}); the master takes ${f(h.master.p50)} ms per routed call, ` +
        `${f(h.master.p50! - h.memberRouted.p50!)} ms of it its own (body, session and rental from memory, sr25519 signing` +
        `${sig ? ` ≈ ${f(sig.signUs / 1000)} ms` : ""}, the call to the member on a kept-alive connection, the reply relayed) ` +
        `and the rest the member's; what is left of the added time is the second HTTP exchange on loopback and the client's side.`,
    );
  }
  out.push(
    `NOTE: ${o.cpus} CPUs shared by the master, the member agent and the bench's simulated members: the members' view includes the bench's own ` +
      "event-loop delay above; the master's handling (fastify's responseTime, from its log) does not, but includes waits for a CPU.",
  );
  return out;
}
