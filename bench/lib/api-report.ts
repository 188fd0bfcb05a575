import type { ProcCpu } from "./api-agent.js";
import type { Probes } from "./api-probes.js";
import { quantile } from "./stats.js";
import type { WrkResult } from "./wrk.js";

/** batu; the bare node:http baseline; the floor, a bare Fastify with batu's logging (bare-http.ts). */
export type Sys = "batu" | "bare" | "floor";
export const TARGET_RATIO = 0.5;

/** One measured wrk run against one server. */
export interface ApiRun {
  system: Sys;
  round: number;
  wrk: WrkResult;
  /** CPU seconds of the server process during the run: its own, and its waited-for children's (qemu-img). */
  serverCpu: ProcCpu;
  /** Bytes the agent appended to its log during the run (batu only). */
  logBytes: number | null;
}

export interface EndpointResult {
  key: "list" | "detail";
  label: string;
  path: string;
  replyBytes: number;
  runs: ApiRun[];
}

export interface SysSummary {
  n: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Per request, ms of CPU: the server's own, its children's, wrk's. */
  cpuMsPerReq: { server: number; children: number; wrk: number };
  logBytesPerReq: number | null;
}

export interface Row {
  key: string;
  label: string;
  batu: SysSummary;
  bare: SysSummary;
  /** Null for a record made before the floor was measured. */
  floor: SysSummary | null;
  ratio: number;
  /** floor req/s / bare req/s: the best ratio any handler could reach under Fastify and this log policy. */
  floorRatio: number | null;
  met: boolean;
}

const med = (xs: number[]) => quantile(xs, 0.5) ?? NaN;

export function summarize(ep: EndpointResult, sys: Sys): SysSummary {
  const rs = ep.runs.filter((r) => r.system === sys);
  const per = (f: (r: ApiRun) => number) => med(rs.map((r) => (f(r) * 1000) / r.wrk.requests));
  return {
    n: rs.length,
    rps: med(rs.map((r) => r.wrk.rps)),
    p50Ms: med(rs.map((r) => r.wrk.latencyMs.p50)),
    p99Ms: med(rs.map((r) => r.wrk.latencyMs.p99)),
    cpuMsPerReq: { server: per((r) => r.serverCpu.self), children: per((r) => r.serverCpu.children), wrk: per((r) => r.wrk.wrkCpuS) },
    logBytesPerReq: rs.some((r) => r.logBytes !== null) ? med(rs.map((r) => (r.logBytes ?? 0) / r.wrk.requests)) : null,
  };
}

export function rows(eps: EndpointResult[]): Row[] {
  return eps.map((ep) => {
    const batu = summarize(ep, "batu");
    const bare = summarize(ep, "bare");
    const floor = ep.runs.some((r) => r.system === "floor") ? summarize(ep, "floor") : null;
    const ratio = batu.rps / bare.rps;
    return { key: ep.key, label: ep.label, batu, bare, floor, ratio, floorRatio: floor && floor.rps / bare.rps, met: ratio >= TARGET_RATIO };
  });
}

const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "–");

export function formatTable(rs: Row[], eps: EndpointResult[]): string {
  const line = "─".repeat(140);
  const heads = ["req/s", "p50 ms", "p99 ms"].map((h) => h.padStart(10)).join("");
  const out = [
    line,
    `${"".padEnd(24)}${"batu".padEnd(30)}${"bare node:http".padEnd(30)}${"floor: bare fastify + log".padEnd(30)}batu/bare req/s`,
    `${"".padEnd(24)}${heads}${heads}${heads}  ratio  floor  target ≥ ${TARGET_RATIO}`,
    line,
  ];
  for (const r of rs) {
    const ep = eps.find((e) => e.key === r.key)!;
    const cell = (x: SysSummary | null) => (x ? [x.rps, x.p50Ms, x.p99Ms] : [NaN, NaN, NaN]).map((v, i) => f(v, i === 0 ? 0 : 2).padStart(10)).join("");
    out.push(
      `${`${r.label} (${ep.replyBytes} B)`.padEnd(24)}${cell(r.batu)}${cell(r.bare)}${cell(r.floor)}  ${f(r.ratio, 3).padStart(5)}  ${f(r.floorRatio ?? NaN, 3).padStart(5)}  ${r.met ? "MET" : "NOT MET"}`,
    );
  }
  out.push(line);
  return out.join("\n");
}

/** CPU per request and the findings the figures support. */
export function formatDetails(rs: Row[], eps: EndpointResult[], p: Probes, connections: number): string[] {
  const out: string[] = ["runs (req/s, p50/p99 ms):"];
  for (const ep of eps) {
    out.push(`  ${ep.label}: ${ep.runs.map((r) => `${r.system} ${f(r.wrk.rps, 0)} (${f(r.wrk.latencyMs.p50, 2)}/${f(r.wrk.latencyMs.p99, 2)})`).join(", ")}`);
  }
  out.push("CPU ms per request (medians): server own + server's children (qemu-img) + wrk");
  for (const r of rs) {
    for (const sys of ["batu", "bare", "floor"] as const) {
      const x = r[sys];
      if (!x) continue;
      const c = x.cpuMsPerReq;
      const logs = x.logBytesPerReq === null ? "" : `; log ${f(x.logBytesPerReq, 0)} B/request`;
      out.push(`  ${r.label}, ${sys}: ${f(c.server, 3)} + ${f(c.children, 3)} + ${f(c.wrk, 3)} = ${f(c.server + c.children + c.wrk, 3)} ms${logs}`);
    }
  }
  out.push(
    `probes (idle machine, in the bench process): qemu-img info ${f(p.qemuImgInfo.wallMs, 2)} ms wall, ${f(p.qemuImgInfo.cpuMs, 2)} ms CPU per call; ` +
      `session signature check ${f(p.sessionVerifyMs * 1000, 0)} µs, remembered ${f(p.sessionRememberedMs * 1000, 1)} µs; list of 1,000: ` +
      `repo.summariesByOwner() ${f(p.list.summariesMs, 2)} ms (was repo.list() + filter, JSON.parse of each spec: ${f(p.list.repoListMs, 2)} ms), ` +
      `shape+stringify ${f(p.list.shapeAndStringifyMs, 2)} ms, from memory (TaskReplies hit) ${f((p.list.keptMs ?? NaN) * 1000, 1)} µs; ` +
      `detail: record read ${f((p.detail?.readMs ?? NaN) * 1000, 0)} µs, read + shape + stringify ${f(p.detailMs * 1000, 0)} µs, ` +
      `from memory (TaskReplies hit) ${f((p.detail?.keptMs ?? NaN) * 1000, 1)} µs`,
  );
  const d = rs.find((r) => r.key === "detail");
  if (d) {
    const c = d.batu.cpuMsPerReq;
    const share = c.children / (c.server + c.children);
    if (share >= 0.1) {
      out.push(
        `task detail: child processes (qemu-img) took ${f(share * 100, 0)} % of batu's CPU (${f(c.children, 2)} of ${f(c.server + c.children, 2)} ms per request). ` +
          "  → BOTTLENECK: the system disk's size should come from the VM's record (VmService.systemDiskBytes), qemu-img only once for a record without it.",
      );
    } else {
      out.push(
        `task detail: no child process per request (${f(c.children, 3)} ms of children's CPU per request): the system disk's size comes from the ` +
          `VM's record; a qemu-img (${f(p.qemuImgInfo.cpuMs, 1)} ms CPU) runs once for a record made before the size was kept. ` +
          `Reading the record and building the reply anew takes ≈ ${f(p.detailMs * 1000, 0)} µs; while the vms table is unchanged the reply bytes ` +
          `are kept (TaskReplies), so a repeat does neither. batu spends ${f(c.server * 1000, 0)} µs of CPU per request in all.`,
      );
    }
  }
  for (const r of rs) {
    const little = (connections / r.batu.rps) * 1000;
    out.push(`${r.label}: batu's p50 ${f(r.batu.p50Ms, 1)} ms is queueing: ${connections} connections / ${f(r.batu.rps, 0)} req/s = ${f(little, 1)} ms (Little's law); the per-request CPU above is the cost.`);
  }
  const bareCpu = Math.min(...rs.map((r) => r.bare.cpuMsPerReq.server));
  out.push(
    `session signature: a full sr25519 check costs ${f(p.sessionVerifyMs * 1000, 0)} µs (${f(p.sessionVerifyMs / bareCpu, 0)}× the bare server's whole ` +
      `${f(bareCpu * 1000, 0)} µs per request); a repeat of a signature that verified is answered from memory (auth/VerifiedSignatures) in ` +
      `${f(p.sessionRememberedMs * 1000, 1)} µs. The node's rental and the session id's renter are kept in memory while their tables are ` +
      "unchanged (RentalLedger, SessionRepo; one PRAGMA data_version per request, shared by those checks and the reply's, sees another process's writes).",
  );
  const l = rs.find((r) => r.key === "list");
  if (l) {
    out.push(
      `tasks list: batu spends ${f(l.batu.cpuMsPerReq.server, 3)} ms CPU per request. The renter's list is kept while the vms table is unchanged ` +
        `(its serialized reply, TaskReplies): ≈ ${f((p.list.keptMs ?? NaN) * 1000, 1)} µs per request. The first request ` +
        `after a write to vms reads the 1,000 tasks again (WHERE owner = ?, index vms_by_owner: ≈ ${f(p.list.summariesMs, 2)} ms) and shapes + ` +
        `stringifies the ${f(p.list.replyBytes / 1024, 0)} KiB reply (≈ ${f(p.list.shapeAndStringifyMs, 2)} ms).`,
    );
  }
  for (const r of rs) {
    if (!r.floor) continue;
    const [b, fl, bare] = [r.batu.cpuMsPerReq.server, r.floor.cpuMsPerReq.server, r.bare.cpuMsPerReq.server];
    out.push(
      `${r.label}, floor: a bare Fastify with batu's logging (one JSON line per request, buffered (docs/logging.md), to a file) answering the same bytes does ` +
        `${f(r.floor.rps, 0)} req/s, ${f(r.floorRatio!, 3)} of the bare server; batu does ${f(r.batu.rps / r.floor.rps, 2)} of the floor. ` +
        `CPU per request: batu ${f(b, 3)}, floor ${f(fl, 3)}, bare ${f(bare, 3)} ms: batu's own work ≈ ${f(b - fl, 3)} ms above the floor; ` +
        `Fastify and the log line ≈ ${f(fl - bare, 3)} ms above node:http.`,
    );
    if (r.met) continue;
    out.push(
      r.floorRatio! < TARGET_RATIO
        ? `${r.label}: the target (≥ ${TARGET_RATIO} of the bare server) is out of reach while every request goes through Fastify and logs ` +
            `its access line: that floor alone reaches ${f(r.floorRatio!, 3)}. batu is at ${f(r.ratio, 3)}.`
        : `${r.label}: NOT MET at ${f(r.ratio, 3)}, though the floor reaches ${f(r.floorRatio!, 3)}: batu's ${f(b - fl, 3)} ms per request above the floor is what is left.`,
    );
  }
  return out;
}
