import type { ProcCpu } from "./api-agent.js";
import type { Probes } from "./api-probes.js";
import { quantile } from "./stats.js";
import type { WrkResult } from "./wrk.js";

export type Sys = "batu" | "bare";
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
  ratio: number;
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
    logBytesPerReq: sys === "batu" ? med(rs.map((r) => (r.logBytes ?? 0) / r.wrk.requests)) : null,
  };
}

export function rows(eps: EndpointResult[]): Row[] {
  return eps.map((ep) => {
    const batu = summarize(ep, "batu");
    const bare = summarize(ep, "bare");
    const ratio = batu.rps / bare.rps;
    return { key: ep.key, label: ep.label, batu, bare, ratio, met: ratio >= TARGET_RATIO };
  });
}

const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "–");

export function formatTable(rs: Row[], eps: EndpointResult[]): string {
  const line = "─".repeat(104);
  const out = [
    line,
    `${"".padEnd(24)}${"batu".padEnd(30)}${"bare node:http".padEnd(30)}batu/bare req/s`,
    `${"".padEnd(24)}${["req/s", "p50 ms", "p99 ms"].map((h) => h.padStart(10)).join("")}${["req/s", "p50 ms", "p99 ms"].map((h) => h.padStart(10)).join("")}  ratio  target ≥ ${TARGET_RATIO}`,
    line,
  ];
  for (const r of rs) {
    const ep = eps.find((e) => e.key === r.key)!;
    const cells = [r.batu.rps, r.batu.p50Ms, r.batu.p99Ms, r.bare.rps, r.bare.p50Ms, r.bare.p99Ms].map((v, i) => f(v, i % 3 === 0 ? 0 : 2).padStart(10));
    out.push(`${`${r.label} (${ep.replyBytes} B)`.padEnd(24)}${cells.join("")}  ${f(r.ratio, 3).padStart(5)}  ${r.met ? "MET" : "NOT MET"}`);
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
    for (const sys of ["batu", "bare"] as const) {
      const c = r[sys].cpuMsPerReq;
      const logs = r[sys].logBytesPerReq === null ? "" : `; agent log ${f(r[sys].logBytesPerReq!, 0)} B/request`;
      out.push(`  ${r.label}, ${sys}: ${f(c.server, 3)} + ${f(c.children, 3)} + ${f(c.wrk, 3)} = ${f(c.server + c.children + c.wrk, 3)} ms${logs}`);
    }
  }
  out.push(
    `probes (idle machine, in the bench process): qemu-img info ${f(p.qemuImgInfo.wallMs, 2)} ms wall, ${f(p.qemuImgInfo.cpuMs, 2)} ms CPU per call; ` +
      `session signature check ${f(p.sessionVerifyMs * 1000, 0)} µs, remembered ${f(p.sessionRememberedMs * 1000, 1)} µs; list of 1,000: ` +
      `repo.summariesByOwner() ${f(p.list.summariesMs, 2)} ms (was repo.list() + filter, JSON.parse of each spec: ${f(p.list.repoListMs, 2)} ms), ` +
      `shape+stringify ${f(p.list.shapeAndStringifyMs, 2)} ms; detail (record read + shape + stringify) ${f(p.detailMs * 1000, 0)} µs`,
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
          `The handler's own work is ≈ ${f(p.detailMs * 1000, 0)} µs of the ${f(c.server * 1000, 0)} µs batu spends per request.`,
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
      `${f(p.sessionRememberedMs * 1000, 1)} µs. The rental and session lookups still run on every request.`,
  );
  const l = rs.find((r) => r.key === "list");
  if (l) {
    out.push(
      `tasks list: batu spends ${f(l.batu.cpuMsPerReq.server, 2)} ms CPU per request, of which reading the renter's tasks ` +
        `(WHERE owner = ?, index vms_by_owner, desc extracted by SQLite) is ≈ ${f(p.list.summariesMs, 2)} ms and shaping + stringifying the ${f(p.list.replyBytes / 1024, 0)} KiB reply ≈ ${f(p.list.shapeAndStringifyMs, 2)} ms.`,
    );
  }
  return out;
}
