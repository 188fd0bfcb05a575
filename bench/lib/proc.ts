import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { open, readdir, readFile, type FileHandle } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

export { sleep };

/** Wall-clock milliseconds since the epoch, sub-millisecond resolution (comparable to Date.now() and pino's `time`). */
/** A bench's log: each line prefixed with the seconds since `started` (Date.now() at the bench's start). */
export function benchLog(started: number): (s: string) => void {
  return (s) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${s}`);
}

/** Stops a child this bench started: SIGTERM, then SIGKILL after `graceMs`; waits for its exit. */
export async function stopChild(c: ChildProcess, graceMs: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  c.kill("SIGTERM");
  await Promise.race([exited, sleep(graceMs)]);
  if (c.exitCode === null && c.signalCode === null) {
    c.kill("SIGKILL");
    await exited;
  }
}

export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Thrown when the run is being interrupted (SIGINT): the measurement loops stop at once. */
export class Interrupted extends Error {
  constructor() {
    super("interrupted");
    this.name = "Interrupted";
  }
}

export const interrupt = new AbortController();

export function checkInterrupted(): void {
  if (interrupt.signal.aborted) throw new Interrupted();
}

/**
 * Resolves with the time (now()) at which a line equal to `marker` was first seen in the growing file
 * `path` (a VM's serial log). Reads only the appended bytes, every `pollMs` (10 ms: the resolution of
 * every "→ ready" figure). `firstLook` is set when the marker was already there on the first read
 * (the figure is then only an upper bound).
 */
export async function waitForMarker(
  path: string,
  marker: string,
  opts: { timeoutMs: number; pollMs?: number },
): Promise<{ at: number; firstLook: boolean }> {
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 10;
  let fh: FileHandle | null = null;
  let offset = 0;
  let carry = "";
  let looks = 0;
  try {
    for (;;) {
      checkInterrupted();
      const t = now();
      let text = "";
      try {
        fh ??= await open(path, "r");
        const { size } = await fh.stat();
        if (size > offset) {
          const buf = Buffer.alloc(size - offset);
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          offset += bytesRead;
          text = buf.subarray(0, bytesRead).toString("utf8");
        }
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "EACCES") throw e;
      }
      looks++;
      if (text) {
        const lines = (carry + text).split(/\r?\n/);
        carry = lines.pop() ?? "";
        if (lines.some((l) => l.trim() === marker)) return { at: t, firstLook: looks === 1 };
      }
      if (Date.now() > deadline) throw new Error(`${marker} did not appear in ${path} within ${opts.timeoutMs} ms`);
      await sleep(pollMs);
    }
  } finally {
    await fh?.close();
  }
}

/** True while `pid` is a live, non-zombie process. */
export async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export async function cmdline(pid: number): Promise<string[] | null> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").slice(0, -1);
  } catch {
    return null;
  }
}

/**
 * Stops a process this bench started: only when its command line still contains `mustContain`
 * (a recycled pid is left alone). SIGTERM, then SIGKILL after `graceMs`. True when it is gone.
 */
export async function stopPid(pid: number, mustContain: string, graceMs = 5_000): Promise<boolean> {
  const args = await cmdline(pid);
  if (args === null || !(await alive(pid))) return true;
  if (!args.join(" ").includes(mustContain)) return true;
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return true;
    }
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      if (!(await alive(pid))) return true;
      await sleep(20);
    }
  }
  return !(await alive(pid));
}

/** Pids of live QEMU processes (any owner) on this machine: a warning sign when the bench is not alone. */
export async function qemuPids(): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const comm = (await readFile(`/proc/${name}/comm`, "utf8")).trim();
      if (comm.startsWith("qemu-system")) pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

/** The 1-minute load average. */
export async function loadAvg(): Promise<number> {
  return Number((await readFile("/proc/loadavg", "utf8")).split(" ")[0]);
}

/**
 * Runs a program (argument array, no shell) to completion; rejects with its stderr on failure.
 * stdin is /dev/null (src/lib/exec.ts writes to the child's stdin, which races a fast exit: EPIPE).
 */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], timeout: opts.timeoutMs ?? 60_000, killSignal: "SIGKILL", ...(opts.env ? { env: opts.env } : {}) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("error", fail);
    child.on("close", (code, signal) => {
      if (code === 0) ok({ stdout, stderr });
      else fail(new Error(`${cmd} ${args.join(" ")}: ${signal ? `signal ${signal}` : `exit ${code}`}: ${stderr.trim().slice(0, 500)}`));
    });
  });
}
