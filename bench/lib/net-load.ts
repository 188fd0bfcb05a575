import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { procCpu } from "./api-agent.js";
import { runInput, type Netns } from "./netns.js";
import { checkInterrupted, sleep } from "./proc.js";

/** One wrk run (GET, `--latency`) and the guest's QEMU CPU meanwhile. */
export interface LoadResult {
  requests: number;
  durationS: number;
  /** Completed requests per second (here also TCP connections per second: the guest's httpd closes each). */
  rps: number;
  /** Bytes read (headers and bodies) per second, MB = 10^6 bytes. */
  mbps: number;
  latencyMs: { p50: number; p90: number; p99: number };
  errors: number;
  non2xx: number;
  /** CPU of the guest's QEMU process during the run, % of one host CPU. */
  qemuCpuPct: number | null;
  /**
   * CPU seconds the run cost (tick-sampled by the kernel): the guest's QEMU in user mode (the
   * emulated guest; slirp too, for user-mode), the same QEMU in the kernel (its tap reads and writes:
   * a packet it writes is bridged, forwarded and NATed in that system call, softirqs included as
   * the kernel charges them to the task they interrupt), and wrk (the client's TCP, and the same
   * path for the packets it sends).
   */
  cpu: { qemuUserS: number; qemuSysS: number; wrkS: number } | null;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const UNIT_B: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** wrk's text output (with --latency) as figures. */
export function parseWrk(out: string): Omit<LoadResult, "qemuCpuPct" | "cpu"> {
  const must = (re: RegExp, what: string) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output has no ${what}:\n${out}`);
    return m;
  };
  const pct = (p: number) => {
    const m = must(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m"), `${p}% latency`);
    return Number(m[1]) * UNIT_MS[m[2]!]!;
  };
  const total = must(/(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB) read/, "request count");
  const durationS = (Number(total[2]) * UNIT_MS[total[3]!]!) / 1000;
  const bytes = Number(total[4]) * UNIT_B[total[5]!]!;
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const requests = Number(total[1]);
  return {
    requests,
    durationS,
    rps: Number(must(/Requests\/sec:\s+([\d.]+)/, "Requests/sec")[1]),
    mbps: bytes / durationS / 1e6,
    latencyMs: requests ? { p50: pct(50), p90: pct(90), p99: pct(99) } : { p50: NaN, p90: NaN, p99: NaN },
    errors: errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

/** The wrk in flight, so that the cleanup can stop it (by its pid). */
let current: ChildProcess | null = null;
export function stopLoad(): void {
  if (current && current.exitCode === null && current.signalCode === null) current.kill("SIGKILL");
}

/** wrk, one thread, inside namespace `ns`, for `durationS` seconds against `url`. */
export async function runLoad(ns: Netns, url: string, o: { connections: number; durationS: number; qemuPid?: number }): Promise<LoadResult> {
  checkInterrupted();
  const args = [...ns.wrap.slice(1), "wrk", "-t1", `-c${o.connections}`, `-d${o.durationS}s`, "--timeout", "10s", "--latency", url];
  const cpu0 = o.qemuPid ? safeCpu(o.qemuPid) : null;
  // wrk is this process's child (ip netns exec execs it): its CPU joins `children` once reaped.
  const wrk0 = procCpu("self").children;
  const t0 = performance.now();
  const child = (current = spawn("ip", args, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((ok, fail) => {
    child.on("error", fail);
    child.on("close", (c) => ok(c));
  });
  const wallS = (performance.now() - t0) / 1000;
  const cpu1 = o.qemuPid ? safeCpu(o.qemuPid) : null;
  const wrkS = procCpu("self").children - wrk0;
  current = null;
  await sleep(0);
  checkInterrupted();
  if (code !== 0) throw new Error(`wrk ${args.join(" ")}: exit ${code}:\n${out}`);
  const cpu = cpu0 !== null && cpu1 !== null ? { qemuUserS: cpu1.user - cpu0.user, qemuSysS: cpu1.sys - cpu0.sys, wrkS } : null;
  return { ...parseWrk(out), qemuCpuPct: cpu === null ? null : ((cpu.qemuUserS + cpu.qemuSysS) / wallS) * 100, cpu };
}

let clkTck: number | null = null;

/** A process's user and system CPU seconds (all its threads), or null when it is gone. */
function safeCpu(pid: number): { user: number; sys: number } | null {
  try {
    clkTck ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
    return { user: f[11]! / clkTck, sys: f[12]! / clkTck };
  } catch {
    return null;
  }
}

/** HTTP status of a GET made inside `ns` (0: nothing answered). */
export async function httpStatus(ns: Netns, url: string): Promise<number> {
  const r = await runInput([...ns.wrap, "curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code}", url], { timeoutMs: 8_000 }).catch(() => null);
  return Number(r?.stdout) || 0;
}

/** Waits until a GET made inside `ns` answers 200. */
export async function waitHttp(ns: Netns, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    checkInterrupted();
    const s = await httpStatus(ns, url);
    if (s === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} from ${ns.name}: HTTP ${s} after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/**
 * Runs `command` in the guest over SSH (root, password auth; the password through sshpass's
 * environment, not argv), from inside `ns`. Rejects on a non-zero exit.
 */
export async function guestSsh(ns: Netns, target: { host: string; port: number; password: string }, command: string, timeoutMs = 60_000): Promise<string> {
  const argv = [
    ...ns.wrap, "sshpass", "-e", "ssh", "-F", "/dev/null", "-p", String(target.port),
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
    "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
    `root@${target.host}`, command,
  ];
  const r = await runInput(argv, { timeoutMs, env: { ...process.env, SSHPASS: target.password } });
  if (r.code !== 0) throw new Error(`ssh ${target.host}:${target.port} ${JSON.stringify(command)}: exit ${r.code}: ${r.stderr.trim().slice(0, 400)}`);
  return r.stdout;
}
