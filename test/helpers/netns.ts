import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";

/**
 * A LAN of network namespaces for end-to-end group tests: a "lan" namespace holding a bridge, and
 * one namespace per host wired to it by a veth pair (`eth0` inside the host, `vh<i>` on the
 * bridge), each with its own 10.77.x.i/24. Nothing is added to the root namespace: the test
 * reaches each host through a forwarder process it starts inside the host's namespace, which
 * accepts on a unix socket (a file, so visible from the root namespace) and pipes to a TCP target.
 */

const FORWARDER = resolve(import.meta.dirname, "unix-forwarder.mjs");

/** A command that failed: its argv, exit code and stderr. */
export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly code: number | string | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(" ")} failed (exit ${code}): ${stderr.trim()}`);
    this.name = "CommandError";
  }
}

/** Runs argv to completion (no shell); rejects with a CommandError. */
export function run(argv: string[], timeoutMs = 10_000): Promise<{ stdout: string; stderr: string }> {
  const [program, ...args] = argv;
  return new Promise((resolvePromise, reject) => {
    execFile(program!, args, { timeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs + 1000) }, (err, stdout, stderr) => {
      if (err) reject(new CommandError(argv, (err as NodeJS.ErrnoException & { code?: unknown }).code as number | string | null, String(stderr)));
      else resolvePromise({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const ip = (...args: string[]) => run(["ip", ...args]);
const suffix = () => randomBytes(3).toString("hex");

/**
 * Why network namespaces cannot be used here (not root, no `ip`, no bridge or veth support), or
 * null when they can. Probes by creating, and deleting, a namespace with a bridge and a veth.
 */
export async function netnsUnavailableReason(): Promise<string | null> {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "creating network namespaces needs root (ip netns add)";
  const probe = `batu-probe-${suffix()}`;
  try {
    await ip("netns", "add", probe);
  } catch (e) {
    return `ip netns add failed: ${(e as Error).message}`;
  }
  try {
    await ip("-n", probe, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0");
    await ip("-n", probe, "link", "add", "va", "type", "veth", "peer", "name", "vb");
    return null;
  } catch (e) {
    return `no bridge or veth support in network namespaces: ${(e as Error).message}`;
  } finally {
    await ip("netns", "del", probe).catch(() => undefined);
  }
}

/** One host of the LAN: a network namespace with its own address. */
export interface NetnsHost {
  /** Short name: h1, h2, ... */
  name: string;
  /** The namespace's name (`ip netns`). */
  ns: string;
  /** Its IPv4 address on the LAN. */
  ip: string;
  /** A unix socket that reaches 127.0.0.1:10000 inside the namespace (the agent's port). */
  socketPath: string;
  /** The command prefix that runs a program inside the namespace. */
  wrap: string[];
}

export class Lan {
  /** The namespaces created so far, the lan one first: all are deleted by destroy(). */
  private readonly namespaces: string[] = [];
  private readonly forwarders: ChildProcess[] = [];
  readonly hosts: NetnsHost[] = [];

  private constructor(
    /** Random, shared by every namespace name of this LAN. */
    readonly id: string,
    /** The first three octets of the LAN's /24, e.g. `10.77.42`. */
    readonly subnet: string,
    /** Where the forwarders' unix sockets live. */
    private readonly socketDir: string,
  ) {}

  get lanNs(): string {
    return `batu-lan-${this.id}`;
  }

  /**
   * The bridge's namespace and the bridge, up, with multicast snooping off so that multicast
   * floods to every port as on a switch without IGMP snooping. On failure, undoes what it made.
   */
  static async create(socketDir: string): Promise<Lan> {
    const lan = new Lan(suffix(), `10.77.${1 + Math.floor(Math.random() * 254)}`, socketDir);
    try {
      await lan.addNamespace(lan.lanNs);
      await ip("-n", lan.lanNs, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0");
      await ip("-n", lan.lanNs, "link", "set", "br0", "up");
    } catch (e) {
      await lan.destroy();
      throw e;
    }
    return lan;
  }

  private async addNamespace(ns: string): Promise<void> {
    await ip("netns", "add", ns);
    this.namespaces.push(ns);
    await ip("-n", ns, "link", "set", "lo", "up");
  }

  /**
   * Host number `index` (1..253): its namespace, a veth pair to the bridge, 10.77.x.<index>/24 on
   * `eth0` with a default route through .254 (as a LAN host has; nothing answers there, but
   * multicast then leaves by eth0), and a forwarder to its port 10000.
   */
  async addHost(index: number): Promise<NetnsHost> {
    const name = `h${index}`;
    const ns = `batu-${name}-${this.id}`;
    const bridgePort = `v${name}`;
    await this.addNamespace(ns);
    // Created in the lan namespace with its peer moved straight into the host's: never in the root one.
    await ip("-n", this.lanNs, "link", "add", bridgePort, "type", "veth", "peer", "name", "eth0", "netns", ns);
    await ip("-n", this.lanNs, "link", "set", bridgePort, "master", "br0", "up");
    const address = `${this.subnet}.${index}`;
    await ip("-n", ns, "addr", "add", `${address}/24`, "dev", "eth0");
    await ip("-n", ns, "link", "set", "eth0", "up");
    await ip("-n", ns, "route", "add", "default", "via", `${this.subnet}.254`, "dev", "eth0");
    const wrap = ["ip", "netns", "exec", ns];
    const socketPath = join(this.socketDir, `${name}.sock`);
    await this.forward(wrap, socketPath, "127.0.0.1", 10000);
    const host: NetnsHost = { name, ns, ip: address, socketPath, wrap };
    this.hosts.push(host);
    return host;
  }

  /** Starts a forwarder inside a namespace: unix socket `socketPath` → host:port there. */
  async forward(wrap: string[], socketPath: string, host: string, port: number, timeoutMs = 10_000): Promise<void> {
    const [program, ...args] = [...wrap, process.execPath, FORWARDER, socketPath, host, String(port)];
    const child = spawn(program!, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.forwarders.push(child);
    let output = "";
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`forwarder for ${socketPath} did not start:\n${output}`)), timeoutMs);
      const onData = (b: Buffer) => {
        output += b.toString();
        if (output.includes("ready\n")) {
          clearTimeout(timer);
          resolveReady();
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`forwarder for ${socketPath} exited with ${code}:\n${output}`));
      });
    });
  }

  /** Runs argv inside a host's namespace. */
  exec(host: NetnsHost, argv: string[], timeoutMs = 10_000): Promise<{ stdout: string; stderr: string }> {
    return run([...host.wrap, ...argv], timeoutMs);
  }

  /**
   * Undoes everything: stops the forwarders, SIGKILLs whatever still runs inside this LAN's
   * namespaces (only this test started processes there: agents, their QEMUs, forwarders, curl),
   * and deletes the namespaces, the bridge and veths with them. Safe to call more than once.
   */
  async destroy(): Promise<void> {
    for (const f of this.forwarders.splice(0)) {
      f.stdin?.end();
      if (f.exitCode === null && f.signalCode === null) f.kill("SIGKILL");
    }
    const errors: string[] = [];
    for (const ns of this.namespaces.splice(0).reverse()) {
      const pids = await ip("netns", "pids", ns).then((r) => r.stdout.split(/\s+/).filter(Boolean).map(Number), () => [] as number[]);
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await ip("netns", "del", ns).catch((e: Error) => errors.push(e.message));
    }
    if (errors.length) throw new Error(`could not delete network namespaces:\n${errors.join("\n")}`);
  }
}
