import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../lib/logger.js";

/**
 * Where the fixed leases are written: dnsmasq drops root for `nobody` after start and re-reads them
 * as `nobody` on SIGHUP, so they cannot live under the agent's data folder (often 0700). Not
 * secret (MACs, addresses, host names); one file per server, named by its run folder.
 */
const HOSTS_DIR = "/run/batu-dnsmasq";
const hostsFileFor = (runDir: string) => join(HOSTS_DIR, `${createHash("sha256").update(runDir).digest("hex").slice(0, 16)}.hosts`);

/** dnsmasq's log lines worth an operator's eye (its start-up lines are not). */
const DNSMASQ_TROUBLE = /no address range|not available|ignored|failed|warning|cannot|error/i;

/** One fixed lease: the VM's MAC gets this address, for ever. */
export interface FixedLease {
  mac: string;
  ip: string;
  hostname: string;
}

export interface DhcpServerOptions {
  /** Where its pid file and hosts file live. */
  runDir: string;
  /** The bridge it serves, and only that. */
  bridge: string;
  /** The bridge's own address: the guests' router and DNS server. */
  gateway: string;
  /** First and last address it may hand out, and the netmask. */
  range: { first: string; last: string; netmask: string };
  /**
   * A private LAN network's (network/lan): fixed leases only, no router and no DNS (the LAN leads
   * nowhere but to its members; DBC gives no gateway either). `gateway` is then only the server's own address.
   */
  privateLan?: boolean;
  log: Logger;
}

/**
 * dnsmasq serving DHCP and DNS on one bridge (the NAT network of a host): each VM's MAC has a fixed
 * lease (a hosts file, re-read on SIGHUP), so a guest that asks DHCP gets the address batu gave it.
 * It runs in the foreground as the agent's child. An agent killed outright leaves it running: the
 * next agent finds it by its pid file and ends it before starting its own (it is told apart from
 * another program that got the pid by its command line naming this pid file).
 */
export class DhcpServer {
  private child: ChildProcess | null = null;
  /** Started and not stopped since: a dnsmasq that ended by itself is started again at the next change. */
  private started = false;
  private readonly pidFile: string;
  private readonly hostsFile: string;

  constructor(private readonly opts: DhcpServerOptions) {
    this.pidFile = join(opts.runDir, "dnsmasq.pid");
    this.hostsFile = hostsFileFor(opts.runDir);
  }

  async start(leases: FixedLease[]): Promise<void> {
    this.started = true;
    await this.endLeftover();
    await this.writeHosts(leases);
    const o = this.opts;
    const args = [
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      `--pid-file=${this.pidFile}`,
      `--interface=${o.bridge}`,
      "--bind-interfaces",
      "--except-interface=lo",
      `--listen-address=${o.gateway}`,
      "--no-hosts",
      "--leasefile-ro",
      "--dhcp-authoritative",
      `--dhcp-hostsfile=${this.hostsFile}`,
      ...(o.privateLan
        ? ["--port=0", `--dhcp-range=${o.range.first},static,${o.range.netmask},infinite`, "--dhcp-option=option:router", "--dhcp-option=option:dns-server"]
        : [
            `--dhcp-range=${o.range.first},${o.range.last},${o.range.netmask},12h`,
            `--dhcp-option=option:router,${o.gateway}`,
            `--dhcp-option=option:dns-server,${o.gateway}`,
          ]),
      "--log-facility=-",
    ];
    const child = spawn("dnsmasq", args, { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    let stderr = "";
    child.stderr!.on("data", (b: Buffer) => {
      const text = b.toString();
      stderr = (stderr + text).slice(-4000);
      // dnsmasq logs what it refuses to serve (no address range, a lease it cannot give): an operator's clue.
      for (const line of text.split("\n")) if (DNSMASQ_TROUBLE.test(line)) o.log.warn({ bridge: o.bridge, dnsmasq: line.trim() }, "dnsmasq");
    });
    // dnsmasq in the foreground has bound its sockets once it writes its pid file.
    const started = await new Promise<boolean>((resolve) => {
      const deadline = Date.now() + 10_000;
      const poll = () => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(false);
        readFile(this.pidFile, "utf8").then(
          (t) => (Number(t.trim()) === child.pid ? resolve(true) : Date.now() > deadline ? resolve(false) : setTimeout(poll, 20)),
          () => (Date.now() > deadline ? resolve(false) : setTimeout(poll, 20)),
        );
      };
      poll();
    });
    if (!started) {
      child.kill("SIGKILL");
      this.child = null;
      throw new Error(`dnsmasq did not start on ${o.bridge}: ${stderr.trim() || "no output"}`);
    }
    child.once("exit", (code, signal) => {
      if (this.child === child) {
        this.child = null;
        o.log.error({ code, signal, bridge: o.bridge, stderr: stderr.trim().slice(-500) }, "dnsmasq ended: guests on its bridge get no DHCP");
      }
    });
    o.log.info({ bridge: o.bridge, pid: child.pid }, "dnsmasq serving DHCP and DNS");
  }

  /** Replaces the fixed leases; dnsmasq re-reads them at once (started again if it ended meanwhile). */
  async setLeases(leases: FixedLease[]): Promise<void> {
    if (!this.child && this.started) return this.start(leases);
    await this.writeHosts(leases);
    this.child?.kill("SIGHUP");
  }

  async stop(): Promise<void> {
    this.started = false;
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
    await rm(this.pidFile, { force: true });
    await rm(this.hostsFile, { force: true });
  }

  private async writeHosts(leases: FixedLease[]): Promise<void> {
    await mkdir(HOSTS_DIR, { recursive: true, mode: 0o755 });
    await chmod(HOSTS_DIR, 0o755);
    const text = leases.map((l) => `${l.mac},${l.ip},${l.hostname},infinite\n`).join("");
    const tmp = `${this.hostsFile}.tmp`;
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, this.hostsFile);
  }

  /** Ends the dnsmasq a killed agent left (the pid file's, if its command line names that file). */
  private async endLeftover(): Promise<void> {
    await endLeftoverDhcp(this.opts.runDir, this.opts.log);
  }
}

/** Ends the dnsmasq a killed agent left in `runDir`: the pid file's, if its command line names that file. */
export async function endLeftoverDhcp(runDir: string, log: Logger): Promise<void> {
  const pidFile = join(runDir, "dnsmasq.pid");
  const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 1) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.includes(`--pid-file=${pidFile}`)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    if (!(await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""))) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  log.info({ pid }, "ended the dnsmasq an earlier agent left");
}
