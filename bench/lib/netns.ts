import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { run, sleep } from "./proc.js";

/**
 * Network namespaces for bench:net. Everything the bench makes (links, addresses, bridges, nftables
 * tables, sysctls) lives inside namespaces it creates here; nothing is added to the root namespace:
 * each veth pair is created inside one namespace with its peer moved straight into the other.
 */

/** The result of a command run to completion (any exit code). */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs argv to completion with `input` on stdin; resolves whatever the exit code (the caller
 * decides), rejects only when it cannot be started or outlives `timeoutMs` (killed, by its pid).
 */
export function runInput(argv: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  const [cmd, ...args] = argv;
  return new Promise((ok, fail) => {
    const child = spawn(cmd!, args, { stdio: ["pipe", "pipe", "pipe"], ...(opts.env ? { env: opts.env } : {}) });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`${argv.join(" ")}: no exit within ${opts.timeoutMs ?? 60_000} ms`));
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
    child.on("error", (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr });
    });
  });
}

/** One network namespace of this bench. */
export class Netns {
  constructor(readonly name: string) {}

  /** The command prefix that runs a program inside it. */
  get wrap(): string[] {
    return ["ip", "netns", "exec", this.name];
  }

  /** `ip -n <ns> ...`, failing on a non-zero exit. */
  ip(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run("ip", ["-n", this.name, ...args], { timeoutMs: 10_000 });
  }

  /** Runs argv inside the namespace; rejects on a non-zero exit. */
  exec(argv: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
    const [cmd, ...args] = [...this.wrap, ...argv];
    return run(cmd!, args, { timeoutMs });
  }

  /** Pids of the processes running inside it. */
  async pids(): Promise<number[]> {
    const r = await run("ip", ["netns", "pids", this.name]).catch(() => ({ stdout: "" }));
    return r.stdout.split(/\s+/).filter(Boolean).map(Number);
  }
}

/** The namespaces this bench made; `destroy` kills what still runs in them (by pid) and deletes them. */
export class NetnsSet {
  readonly id = randomBytes(3).toString("hex");
  private readonly made: Netns[] = [];

  /** A new namespace `bnet-<role>-<id>` with its loopback up. */
  async add(role: string): Promise<Netns> {
    const ns = new Netns(`bnet-${role}-${this.id}`);
    await run("ip", ["netns", "add", ns.name]);
    this.made.push(ns);
    await ns.ip("link", "set", "lo", "up");
    return ns;
  }

  /**
   * A veth pair between two of them: `aName` with `aAddr` (CIDR) in `a`, `bName` with `bAddr` in
   * `b`; made in `a` with its peer created straight in `b` (never in the root namespace).
   */
  async link(a: Netns, aName: string, aAddr: string, b: Netns, bName: string, bAddr: string): Promise<void> {
    await a.ip("link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.name);
    await a.ip("addr", "add", aAddr, "dev", aName);
    await b.ip("addr", "add", bAddr, "dev", bName);
    await a.ip("link", "set", aName, "up");
    await b.ip("link", "set", bName, "up");
  }

  /**
   * SIGKILLs, by pid, whatever still runs inside these namespaces (only this bench started
   * processes there: agents, their QEMUs and dnsmasq, the hand-made QEMU, wrk, curl, ssh), then
   * deletes them (their links, bridges and nftables tables go with them). Safe to call twice.
   */
  async destroy(): Promise<void> {
    const errors: string[] = [];
    for (const ns of this.made.splice(0).reverse()) {
      for (let i = 0; i < 3; i++) {
        const pids = await ns.pids();
        if (!pids.length) break;
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // gone already
          }
        }
        await sleep(200);
      }
      await run("ip", ["netns", "del", ns.name]).catch((e: Error) => errors.push(e.message));
    }
    if (errors.length) throw new Error(`could not delete network namespaces:\n${errors.join("\n")}`);
  }
}

/** Why namespaces cannot be used here, or null. */
export async function netnsProblem(): Promise<string | null> {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "run as root (ip netns, nft, QEMU on taps)";
  for (const tool of ["ip", "nft", "dnsmasq", "wrk", "curl", "ssh", "sshpass", "qemu-system-x86_64", "qemu-img"]) {
    const r = await runInput(["sh", "-c", `command -v ${tool}`]).catch(() => null);
    if (!r || r.code !== 0) return `${tool} is missing`;
  }
  return null;
}
