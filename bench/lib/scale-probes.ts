/** What bench:scale reads from the master: timed calls, and its memory (the kernel's and its JS heap's). */
import { readFileSync } from "node:fs";
import type { ApiAgent } from "./api-agent.js";
import { now } from "./proc.js";

/** A GET with the admin token: ms to the whole reply; throws on a non-200. */
export async function timedGet(master: ApiAgent, path: string): Promise<{ ms: number; bytes: Buffer; headers: Headers }> {
  const t0 = now();
  const res = await fetch(`${master.url}${path}`, { headers: { authorization: `Bearer ${master.token}` } }).catch((e: Error) => {
    throw new Error(`GET ${path}: ${e.message}${e.cause ? ` (${(e.cause as Error).message ?? String(e.cause)})` : ""}`);
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const ms = now() - t0;
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}: ${bytes.toString().slice(0, 300)}`);
  return { ms, bytes, headers: res.headers };
}

export interface MasterMemory {
  /** /proc/<pid>/status VmRSS and VmHWM (the peak). */
  rssBytes: number;
  rssPeakBytes: number;
  /** The agent's /metrics (prom-client's defaults): V8 heap used and its total size. */
  heapUsedBytes: number;
  heapTotalBytes: number;
}

export async function masterMemory(master: ApiAgent): Promise<MasterMemory> {
  const status = readFileSync(`/proc/${master.pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  const metrics = (await timedGet(master, "/metrics")).bytes.toString("utf8");
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN);
  return { rssBytes: kib("VmRSS"), rssPeakBytes: kib("VmHWM"), heapUsedBytes: gauge("nodejs_heap_size_used_bytes"), heapTotalBytes: gauge("nodejs_heap_size_total_bytes") };
}
