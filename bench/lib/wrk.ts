import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { checkInterrupted, sleep } from "./proc.js";
import { cpuDelta, procCpu } from "./api-agent.js";

export interface WrkOptions {
  threads: number;
  connections: number;
  durationS: number;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  rps: number;
  latencyMs: { p50: number; p75: number; p90: number; p99: number };
  /** Response bytes (headers and bodies) per request, from wrk's "MB read" (3 significant digits). */
  bytesPerRequest: number;
  non2xx: number;
  socketErrors: number;
  /** CPU seconds wrk itself used. */
  wrkCpuS: number;
}

/** A wrk script that POSTs `body` (JSON) to the URL's path with every request. */
export function writeScript(path: string, body: string): void {
  if (body.includes("]==]")) throw new Error("body cannot be quoted as a Lua long string");
  writeFileSync(path, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[${body}]==]\n`);
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const UNIT_B: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

function parse(out: string, wrkCpuS: number): WrkResult {
  const num = (re: RegExp, what: string) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output has no ${what}:\n${out}`);
    return m;
  };
  const pct = (p: number) => {
    const m = num(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m"), `${p}% latency`);
    return Number(m[1]) * UNIT_MS[m[2]!]!;
  };
  const total = num(/(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB) read/, "request count");
  const requests = Number(total[1]);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests,
    durationS: (Number(total[2]) * UNIT_MS[total[3]!]!) / 1000,
    rps: Number(num(/Requests\/sec:\s+([\d.]+)/, "Requests/sec")[1]),
    latencyMs: { p50: pct(50), p75: pct(75), p90: pct(90), p99: pct(99) },
    bytesPerRequest: requests ? (Number(total[4]) * UNIT_B[total[5]!]!) / requests : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    wrkCpuS,
  };
}

/** The wrk run in progress, so that the cleanup can stop it (by its pid) on SIGINT. */
let current: ChildProcess | null = null;
export function stopWrk(): void {
  if (current && current.exitCode === null && current.signalCode === null) current.kill("SIGKILL");
}

/** Runs wrk to completion (`--latency`); its CPU time is read from this process's waited-for children. */
export async function runWrk(url: string, script: string, o: WrkOptions): Promise<WrkResult> {
  checkInterrupted();
  const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.durationS}s`, "--timeout", "10s", "--latency", "-s", script, url];
  const before = procCpu("self");
  const child = (current = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((ok, fail) => {
    child.on("error", fail);
    child.on("close", (c) => ok(c));
  });
  current = null;
  await sleep(0);
  checkInterrupted();
  if (code !== 0) throw new Error(`wrk ${args.join(" ")}: exit ${code}:\n${out}`);
  return parse(out, cpuDelta(before, procCpu("self")).children);
}
