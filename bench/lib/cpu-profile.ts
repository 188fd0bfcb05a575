/**
 * Where the agent's main thread spent the measured runs, from a V8 CPU profile (`node --cpu-prof`).
 * Samples are kept when they fall inside a run's window (CLOCK_MONOTONIC µs: V8's profile clock is
 * process.hrtime's) and put in the first group any frame of their stack matches, by priority.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

interface Frame {
  functionName: string;
  url: string;
}
interface Profile {
  nodes: Array<{ id: number; callFrame: Frame; children?: number[] }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Group → does this frame belong to it. First match on the stack (leaf to root), in this order, wins. */
const GROUPS: Array<[string, (f: Frame) => boolean]> = [
  ["idle", (f) => f.functionName === "(idle)"],
  ["garbage collector", (f) => f.functionName === "(garbage collector)"],
  ["qemu-img: spawn() (fork+exec, synchronous)", (f) => f.url.includes("child_process") && /spawn/i.test(f.functionName)],
  ["qemu-img: exec plumbing, output parse", (f) => /dist\/(lib\/exec|storage\/qemu-img)\.js/.test(f.url) || f.url.includes("child_process")],
  ["session signature check (sr25519)", (f) => f.functionName === "verifySignature"],
  ["rental check", (f) => f.url.includes("rental-ledger")],
  ["store read + spec JSON.parse (VmRepo)", (f) => f.url.includes("dist/vm/repo.js")],
  ["task shape (taskSummary/taskDetail)", (f) => f.url.includes("task-view")],
  ["reply serialization (fastify)", (f) => f.functionName === "serialize" && f.url.includes("fastify")],
  ["logging (pino)", (f) => f.url.includes("pino")],
];

export interface Window {
  key: string;
  fromUs: number;
  toUs: number;
}

/** The newest .cpuprofile in `dir`. */
export function newestProfile(dir: string): string | null {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).sort();
  return files.length ? join(dir, files[files.length - 1]!) : null;
}

/** Per window key (runs with the same key summed): ms of samples per group, "other" for the rest. */
export function breakdown(file: string, windows: Window[]): Record<string, Record<string, number>> {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const groupOf = new Map<number, string>();
  const group = (id: number): string => {
    const hit = groupOf.get(id);
    if (hit) return hit;
    const stack: Frame[] = [];
    for (let j: number | undefined = id; j !== undefined; j = parent.get(j)) stack.push(byId.get(j)!.callFrame);
    const g = GROUPS.find(([, match]) => stack.some(match))?.[0] ?? "other";
    groupOf.set(id, g);
    return g;
  };
  const out: Record<string, Record<string, number>> = {};
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    const w = windows.find((x) => t >= x.fromUs && t < x.toUs);
    if (!w) continue;
    const g = group(p.samples[i]!);
    const acc = (out[w.key] ??= {});
    acc[g] = (acc[g] ?? 0) + (p.timeDeltas[i + 1] ?? 0) / 1000;
  }
  return out;
}

/** Lines: per key, each group's share of the window's wall time. */
export function formatBreakdown(b: Record<string, Record<string, number>>): string[] {
  const out: string[] = [];
  for (const [key, groups] of Object.entries(b)) {
    const total = Object.values(groups).reduce((a, v) => a + v, 0);
    const parts = Object.entries(groups)
      .sort((x, y) => y[1] - x[1])
      .map(([g, ms]) => `${g} ${((ms / total) * 100).toFixed(1)} %`);
    out.push(`  ${key} (${(total / 1000).toFixed(1)} s of samples): ${parts.join("; ")}`);
  }
  return out;
}
