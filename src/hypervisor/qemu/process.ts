import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { exec } from "../../lib/exec.js";
import { runPaths } from "./spec.js";

/** The QEMU binary batu runs. */
export const QEMU_BINARY = "qemu-system-x86_64";

export interface StartQemuOptions {
  binary?: string;
  /** QEMU with -daemonize returns once the machine is initialised; default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Starts a daemonized QEMU with `argv` (which must hold `-daemonize` and `-pidfile <runDir>/qemu.pid`,
 * as buildQemuArgv writes) and returns its pid. A failed start rejects with the ExecError that carries
 * QEMU's stderr. `stderr` holds start-up warnings; QEMU's later stderr goes to /dev/null.
 */
export async function startQemu(
  argv: readonly string[],
  runDir: string,
  opts: StartQemuOptions = {},
): Promise<{ pid: number; stderr: string }> {
  const { stderr } = await exec(opts.binary ?? QEMU_BINARY, argv, {
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const pid = await readPidFile(runDir);
  if (pid === null) throw new Error(`QEMU started but wrote no pid file in ${runDir}`);
  return { pid, stderr };
}

/** The pid QEMU wrote in runDir/qemu.pid, or null when there is none (QEMU removes it on a clean exit). */
export async function readPidFile(runDir: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(runPaths(runDir).pidFile, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * True when `pid` is a live (non-zombie) process whose command line names this runDir's QMP socket:
 * a recycled pid belonging to another program is not mistaken for the VM.
 */
export async function isQemuAlive(pid: number, runDir: string, procRoot = "/proc"): Promise<boolean> {
  let cmdline: string;
  let stat: string;
  try {
    [cmdline, stat] = await Promise.all([
      readFile(`${procRoot}/${pid}/cmdline`, "utf8"),
      readFile(`${procRoot}/${pid}/stat`, "utf8"),
    ]);
  } catch {
    return false;
  }
  if (procState(stat) === "Z") return false;
  const socket = runPaths(runDir).qmpSocket;
  // buildQemuArgv writes the path with commas doubled, inside "path=...,".
  return cmdline.split("\0").some((arg) => arg.includes(`path=${socket.replaceAll(",", ",,")},`));
}

/** Sends a signal; false when the process no longer exists. */
export function killQemu(pid: number, signal: NodeJS.Signals = "SIGTERM"): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

/** Resolves true once `pid` has exited (a zombie counts as exited), false after timeoutMs. */
export async function waitForExit(pid: number, timeoutMs: number, procRoot = "/proc"): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let stat: string | null;
    try {
      stat = await readFile(`${procRoot}/${pid}/stat`, "utf8");
    } catch {
      stat = null;
    }
    if (stat === null || procState(stat) === "Z") return true;
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
}

/** The state letter of /proc/<pid>/stat; the comm field may hold spaces and parentheses. */
export function procState(stat: string): string | undefined {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
}
