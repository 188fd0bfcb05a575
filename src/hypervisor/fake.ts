import { once } from "node:events";
import { appendFile, mkdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { HypervisorError, HypervisorErrorCode, type DiskBackup, type Hypervisor } from "./driver.js";
import { QmpClient, type QmpConnectOptions } from "./qemu/qmp/client.js";
import { runPaths, type DiskSpec, type DiskThrottle, type HostForward, type QemuSpec } from "./qemu/spec.js";
import type { QemuStats } from "./qemu/stats.js";
import { GuestAgentError, GuestAgentErrorCode } from "./qemu/qga.js";

/** A disk of a fake guest: its file, the size a resize told it (null: as started), its cap. */
interface FakeDisk {
  path: string;
  sizeBytes: number | null;
  throttle?: DiskThrottle | null;
}

/**
 * A Hypervisor for unit tests of the layers above it (the VM service, its runtime, reconcile): no
 * process and no guest, but each "VM" serves QMP on a real unix socket in its run dir, so the real
 * QmpClient and everything that watches it run unchanged. A guest prints the ready marker on its
 * serial log after start and after each reset, powers off on ACPI unless told to ignore it, and can
 * be made to crash. Not for the product: the agent always drives real QEMU.
 */
export class FakeHypervisor implements Hypervisor {
  /** Every spec started, in order. */
  readonly started: QemuSpec[] = [];
  /** Every live forward change asked for. */
  readonly forwardChanges: Array<{ nicId: string; remove: readonly HostForward[]; add: readonly HostForward[] }> = [];
  /** Makes the next `start` fail with this error (then clears itself). */
  failNextStart: Error | undefined;
  /** Whether guests power off on the ACPI power button (a guest still booting does not). */
  guestsHonourAcpi = true;
  /** Whether guests print their ready marker (false: a guest that is still booting). */
  guestsBecomeReady = true;
  /** Whether guests run a guest agent; passwords set through it, by run dir and user. */
  guestsHaveAgent = false;
  readonly passwords = new Map<string, string>();
  /** Whether guests release a disk asked to be unplugged (a guest that ignores the request does not). */
  guestsReleaseDisks = true;
  /** Each running guest's disks as QEMU holds them: id → path and the size told to the guest (null: the file's). */
  private readonly disks = new Map<string, Map<string, FakeDisk>>();
  private readonly guests = new Map<string, FakeGuest>();
  /** Each QMP connection's run dir, and each run dir's live forwards by NIC (as QEMU's slirp keeps them). */
  private readonly connections = new WeakMap<QmpClient, string>();
  private readonly forwards = new Map<string, Map<string, HostForward[]>>();
  private nextPid = 4_000_000;

  constructor(private readonly opts: { readyMarker?: string | null } = {}) {}

  /** The run dirs of the guests that run now. */
  running(): string[] {
    return [...this.guests.keys()];
  }

  /** QEMU goes away by itself (a crash, or the guest powering off from inside). */
  async crash(runDir: string): Promise<void> {
    await this.guests.get(runDir)?.exit(this.guests);
  }

  async start(spec: QemuSpec): Promise<{ pid: number }> {
    const failure = this.failNextStart;
    this.failNextStart = undefined;
    if (failure) throw failure;
    if (this.guests.has(spec.runDir)) {
      throw new HypervisorError(HypervisorErrorCode.AlreadyRunning, `a QEMU already runs from ${spec.runDir}`);
    }
    await mkdir(spec.runDir, { recursive: true, mode: 0o700 });
    const guest = new FakeGuest(spec.runDir, this.nextPid++, this.opts.readyMarker ?? "BATU-READY", {
      honoursAcpi: () => this.guestsHonourAcpi,
      becomesReady: () => this.guestsBecomeReady,
    });
    this.guests.set(spec.runDir, guest);
    this.forwards.set(spec.runDir, new Map(spec.nics.flatMap((n) => (n.kind === "user" ? [[n.id, [...n.hostForwards]] as const] : []))));
    await guest.boot(this.guests);
    this.started.push(spec);
    this.disks.set(spec.runDir, new Map(spec.disks.map((d) => [d.id, { path: d.path, sizeBytes: null }])));
    return { pid: guest.pid };
  }

  async connect(runDir: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const qmp = await QmpClient.connect(runPaths(runDir).qmpSocket, { deadlineMs: 2_000, ...opts });
    this.connections.set(qmp, runDir);
    return qmp;
  }

  async findRunning(runDir: string): Promise<number | null> {
    return this.guests.get(runDir)?.pid ?? null;
  }

  async isAlive(pid: number, runDir: string): Promise<boolean> {
    return this.guests.get(runDir)?.pid === pid;
  }

  async powerdown(qmp: QmpClient): Promise<void> {
    await qmp.execute("system_powerdown");
  }

  async reset(qmp: QmpClient): Promise<void> {
    await qmp.execute("system_reset");
  }

  async pause(qmp: QmpClient): Promise<void> {
    await qmp.execute("stop");
  }

  async resume(qmp: QmpClient): Promise<void> {
    await qmp.execute("cont");
  }

  async quit(qmp: QmpClient, pid: number, runDir: string): Promise<void> {
    await qmp.execute("quit").catch(() => undefined);
    await this.kill(pid, runDir);
  }

  async kill(pid: number, runDir: string): Promise<void> {
    const guest = this.guests.get(runDir);
    if (guest?.pid === pid) await guest.exit(this.guests);
  }

  async updateHostForwards(qmp: QmpClient, nicId: string, change: { remove: readonly HostForward[]; add: readonly HostForward[] }): Promise<void> {
    this.forwardChanges.push({ nicId, ...change });
    const nics = this.forwards.get(this.connections.get(qmp) ?? "");
    if (!nics) return;
    const same = (a: HostForward, b: HostForward) => a.proto === b.proto && a.hostAddr === b.hostAddr && a.hostPort === b.hostPort && a.guestPort === b.guestPort;
    const kept = (nics.get(nicId) ?? []).filter((f) => !change.remove.some((r) => same(r, f)));
    nics.set(nicId, [...kept, ...change.add]);
  }

  async hostForwards(qmp: QmpClient, nicId: string): Promise<HostForward[]> {
    return [...(this.forwards.get(this.connections.get(qmp) ?? "")?.get(nicId) ?? [])];
  }

  /** The disks a running guest has now, by id, with the size a resize told it (null: as started). */
  disksOf(runDir: string): Map<string, FakeDisk> {
    return new Map(this.disks.get(runDir) ?? []);
  }

  private disksBehind(qmp: QmpClient): Map<string, FakeDisk> {
    const disks = this.disks.get(this.connections.get(qmp) ?? "");
    if (!disks) throw new Error("fake: no such guest");
    return disks;
  }

  async attachDisk(qmp: QmpClient, disk: DiskSpec): Promise<void> {
    const disks = this.disksBehind(qmp);
    if (disks.has(disk.id)) throw new Error(`Duplicate device ID '${disk.id}' for device`);
    disks.set(disk.id, { path: disk.path, sizeBytes: null });
  }

  async throttleDisk(qmp: QmpClient, id: string, throttle: DiskThrottle | null): Promise<void> {
    const disk = this.disksBehind(qmp).get(id);
    if (!disk) throw new Error(`Device '/machine/peripheral/${id}/virtio-backend' not found`);
    disk.throttle = throttle;
  }

  async diskThrottles(qmp: QmpClient): Promise<Array<{ id: string; throttle: DiskThrottle | null }>> {
    return [...this.disksBehind(qmp)].map(([id, d]) => ({ id, throttle: d.throttle ?? null }));
  }

  async resizeDisk(qmp: QmpClient, id: string, sizeBytes: number): Promise<void> {
    const disk = this.disksBehind(qmp).get(id);
    if (!disk) throw new Error(`Cannot find device='' nor node-name='disk-${id}'`);
    disk.sizeBytes = sizeBytes;
  }

  async detachDisk(qmp: QmpClient, id: string, opts: { timeoutMs: number }): Promise<void> {
    const disks = this.disksBehind(qmp);
    if (!disks.has(id)) return; // unplugged already, as QEMU's driver takes it
    if (!this.guestsReleaseDisks) {
      throw new HypervisorError(HypervisorErrorCode.DiskBusy, `the guest did not release disk ${id} within ${opts.timeoutMs / 1000} s`);
    }
    disks.delete(id);
  }

  /** Every live backup asked for, one entry per disk, and whether its guest was frozen meanwhile. */
  readonly backups: Array<DiskBackup & { frozen: boolean }> = [];
  /** Run dirs of the guests frozen now. */
  readonly frozen = new Set<string>();

  async backupDisks(qmp: QmpClient, targets: readonly DiskBackup[], opts: { onProgress?: (fraction: number) => void; afterStart?: () => void }): Promise<void> {
    const disks = this.disksBehind(qmp);
    const missing = targets.find((t) => !disks.has(t.id));
    if (missing) throw new Error(`Cannot find device='' nor node-name='disk-${missing.id}'`);
    const frozen = this.frozen.has(this.connections.get(qmp) ?? "");
    for (const t of targets) this.backups.push({ ...t, frozen });
    opts.afterStart?.();
    opts.onProgress?.(0.5);
    opts.onProgress?.(1);
  }

  async freezeGuest(_qmp: QmpClient, runDir: string): Promise<boolean> {
    if (!this.guests.has(runDir) || !this.guestsHaveAgent) return false;
    this.frozen.add(runDir);
    return true;
  }

  async thawGuest(runDir: string): Promise<void> {
    this.frozen.delete(runDir);
  }

  async setUserPassword(runDir: string, username: string, password: string): Promise<void> {
    if (!this.guests.has(runDir) || !this.guestsHaveAgent) {
      throw new GuestAgentError(GuestAgentErrorCode.NotResponding, "the guest agent did not answer within 50 ms (no qemu-guest-agent in the guest, or it is not up yet)");
    }
    this.passwords.set(`${runDir}/${username}`, password);
  }

  async stats(): Promise<QemuStats> {
    return { uptimeMs: 1000, vcpuCount: 1, vcpuTimeMs: 10, processCpuTimeMs: 20, rssBytes: 64 * 2 ** 20, disks: [], nics: [] };
  }
}

const GREETING = { QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "fake" }, capabilities: [] } };

/** One fake VM: a QMP server on the run dir's socket, and the serial log a real guest would write. */
class FakeGuest {
  private server: Server | undefined;
  private readonly conns = new Set<Socket>();
  private exited = false;

  constructor(
    readonly runDir: string,
    readonly pid: number,
    private readonly readyMarker: string,
    private readonly behaviour: { honoursAcpi: () => boolean; becomesReady: () => boolean },
  ) {}

  async boot(registry: Map<string, FakeGuest>): Promise<void> {
    const paths = runPaths(this.runDir);
    await rm(paths.qmpSocket, { force: true });
    this.server = createServer((conn) => this.serve(conn, registry));
    this.server.listen(paths.qmpSocket);
    await once(this.server, "listening");
    // QEMU starts each boot's serial log afresh.
    await writeFile(paths.serialLog, "");
    this.printReady(20);
  }

  private serve(conn: Socket, registry: Map<string, FakeGuest>): void {
    this.conns.add(conn);
    conn.on("close", () => this.conns.delete(conn));
    conn.on("error", () => undefined);
    const send = (obj: unknown) => conn.write(`${JSON.stringify(obj)}\r\n`);
    const event = (name: string, data: unknown = {}) => this.broadcast({ event: name, data, timestamp: { seconds: 0, microseconds: 0 } });
    send(GREETING);
    let buf = "";
    conn.setEncoding("utf8");
    conn.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id?: unknown };
        buf = buf.slice(nl + 1);
        send({ return: msg.execute === "human-monitor-command" ? "" : {}, id: msg.id });
        switch (msg.execute) {
          case "system_powerdown":
            event("POWERDOWN");
            if (this.behaviour.honoursAcpi()) {
              event("SHUTDOWN", { guest: true, reason: "guest-shutdown" });
              setImmediate(() => void this.exit(registry));
            }
            break;
          case "system_reset":
            event("RESET", { guest: false, reason: "host-qmp-system-reset" });
            this.printReady(50);
            break;
          case "quit":
            setImmediate(() => void this.exit(registry));
            break;
        }
      }
    });
  }

  private broadcast(obj: unknown): void {
    for (const c of this.conns) c.write(`${JSON.stringify(obj)}\r\n`);
  }

  /** The guest's "ready" line on its serial log, after `delayMs` (a reset's watcher starts at the log's end first). */
  private printReady(delayMs: number): void {
    setTimeout(() => {
      if (!this.exited && this.behaviour.becomesReady()) void appendFile(runPaths(this.runDir).serialLog, `${this.readyMarker}\n`).catch(() => undefined);
    }, delayMs).unref();
  }

  /** The process ends: gone from the registry first (so it is not alive), then its sockets close. */
  async exit(registry: Map<string, FakeGuest>): Promise<void> {
    if (this.exited) return;
    this.exited = true;
    if (registry.get(this.runDir) === this) registry.delete(this.runDir);
    for (const c of this.conns) c.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
