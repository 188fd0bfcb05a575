import { mkdir, writeFile } from "node:fs/promises";
import type { Logger } from "../../lib/logger.js";
import { HypervisorError, HypervisorErrorCode, type DiskBackup, type Hypervisor } from "../driver.js";
import { buildQemuArgv } from "./argv.js";
import { isQemuAlive, killQemu, QEMU_BINARY, readPidFile, startQemu, waitForExit } from "./process.js";
import { QmpClient, type QmpConnectOptions } from "./qmp/client.js";
import { QmpError } from "./qmp/errors.js";
import { diskFileNodeName, diskNodeName, GUEST_AGENT_CHARDEV, HOTPLUG_PORT_PREFIX, nicNetdevId, runPaths, type DiskSpec, type DiskThrottle, type HostForward, type QemuSpec } from "./spec.js";
import { guestAgentCall } from "./qga.js";
import { parseUsernetForwards } from "./usernet.js";
import { collectQemuStats, type NicRef, type QemuStats } from "./stats.js";

export interface QemuHypervisorOptions {
  /** @default "qemu-system-x86_64" */
  binary?: string;
  logger?: Logger;
}

const DEFAULT_EXIT_TIMEOUT_MS = 5_000;
/** How long a guest agent may take to freeze or thaw the guest's filesystems. */
const FREEZE_TIMEOUT_MS = 5_000;

/** The Hypervisor driver for QEMU, driven over QMP (no libvirt). */
export class QemuHypervisor implements Hypervisor {
  private readonly binary: string;
  private readonly log: Logger | undefined;

  constructor(opts: QemuHypervisorOptions = {}) {
    this.binary = opts.binary ?? QEMU_BINARY;
    this.log = opts.logger?.child({ driver: "qemu" });
  }

  async start(spec: QemuSpec, opts: { paused?: boolean; signal?: AbortSignal } = {}): Promise<{ pid: number }> {
    const argv = buildQemuArgv(spec);
    if (opts.paused) argv.push("-S");
    const existing = await this.findRunning(spec.runDir);
    if (existing !== null) {
      throw new HypervisorError(HypervisorErrorCode.AlreadyRunning, `a QEMU (pid ${existing}) already runs from ${spec.runDir}`);
    }
    // The run folder holds the QMP socket (full control of the VM): owner only.
    await mkdir(spec.runDir, { recursive: true, mode: 0o700 });
    // QEMU appends to the console log (append=on, so it can be rotated): each boot starts it afresh.
    await writeFile(runPaths(spec.runDir).serialLog, "", { mode: 0o600 });
    const started = Date.now();
    const { pid, stderr } = await startQemu(argv, spec.runDir, {
      binary: this.binary,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    this.log?.info({ vm: spec.name, pid, ms: Date.now() - started }, "QEMU started");
    if (stderr.trim()) this.log?.warn({ vm: spec.name, stderr: stderr.trim() }, "QEMU printed warnings at start");
    return { pid };
  }

  connect(runDir: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const logger = opts.logger ?? this.log;
    return QmpClient.connect(runPaths(runDir).qmpSocket, { ...opts, ...(logger ? { logger } : {}) });
  }

  async findRunning(runDir: string): Promise<number | null> {
    const pid = await readPidFile(runDir);
    return pid !== null && (await isQemuAlive(pid, runDir)) ? pid : null;
  }

  isAlive(pid: number, runDir: string): Promise<boolean> {
    return isQemuAlive(pid, runDir);
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

  async updateHostForwards(qmp: QmpClient, nicId: string, change: { remove: readonly HostForward[]; add: readonly HostForward[] }): Promise<void> {
    const netdev = nicNetdevId(nicId);
    // QMP has no command for slirp forwards; HMP answers in text: hostfwd_add prints nothing on
    // success, hostfwd_remove "... removed".
    const hmp = async (line: string, success: RegExp) => {
      const out = (await qmp.execute<string>("human-monitor-command", { "command-line": line })).trim();
      if (!success.test(out)) throw new Error(`${line.split(" ")[0]}: ${out}`);
    };
    for (const f of change.remove) await hmp(`hostfwd_remove ${netdev} ${f.proto}:${f.hostAddr}:${f.hostPort}`, /removed$/);
    for (const f of change.add) await hmp(`hostfwd_add ${netdev} ${f.proto}:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`, /^$/);
  }

  async hostForwards(qmp: QmpClient, nicId: string): Promise<HostForward[]> {
    const out = await qmp.execute<string>("human-monitor-command", { "command-line": "info usernet" });
    return parseUsernetForwards(out, nicNetdevId(nicId));
  }

  async attachDisk(qmp: QmpClient, disk: DiskSpec): Promise<void> {
    // The same nodes and device as a disk given at start (argv.ts), added one by one; undone on failure.
    const file = diskFileNodeName(disk.id);
    const node = diskNodeName(disk.id);
    const undo: string[] = [];
    try {
      await qmp.execute("blockdev-add", { driver: "file", "node-name": file, filename: disk.path, discard: "unmap" });
      undo.unshift(file);
      await qmp.execute("blockdev-add", { driver: disk.format, "node-name": node, file, discard: "unmap" });
      undo.unshift(node);
      await this.plugDevice(qmp, { driver: "virtio-blk-pci", id: disk.id, drive: node });
    } catch (e) {
      for (const name of undo) await qmp.execute("blockdev-del", { "node-name": name }).catch(() => undefined);
      throw e;
    }
  }

  /**
   * device_add where the machine takes it: a pc machine's root bus hot-plugs; a q35's does not, so
   * the device goes to the first free one of its spare root ports (`hp0`, `hp1`, ...: argv.ts).
   */
  private async plugDevice(qmp: QmpClient, device: Record<string, unknown>): Promise<void> {
    try {
      await qmp.execute("device_add", device);
      return;
    } catch (e) {
      if (!(e instanceof QmpError && /does not support hotplugging/.test(e.message))) throw e;
    }
    for (let port = 0; ; port++) {
      try {
        // Slot 0, the one a root port has: QEMU would take another slot, which the guest never scans.
        await qmp.execute("device_add", { ...device, bus: `${HOTPLUG_PORT_PREFIX}${port}`, addr: "00.0" });
        return;
      } catch (e) {
        if (!(e instanceof QmpError)) throw e;
        // Taken by a disk plugged earlier: try the next. No such port: none left.
        if (/not available|in use|occupied/.test(e.message)) continue;
        if (/not found/.test(e.message)) throw new HypervisorError(HypervisorErrorCode.NoHotplugPort, `no free hotplug port for ${String(device.id)}: the VM's ${port} are taken`);
        throw e;
      }
    }
  }

  async throttleDisk(qmp: QmpClient, id: string, throttle: DiskThrottle | null): Promise<void> {
    // A disk given with -blockdev has no legacy drive name: its backend is named by the device's path.
    await qmp.execute("block_set_io_throttle", {
      id: virtioBackendPath(id),
      iops: throttle?.iops ?? 0,
      iops_rd: 0,
      iops_wr: 0,
      bps: throttle?.bytesPerSec ?? 0,
      bps_rd: 0,
      bps_wr: 0,
      ...(throttle ? { group: throttle.group } : {}),
    });
  }

  async diskThrottles(qmp: QmpClient): Promise<Array<{ id: string; throttle: DiskThrottle | null }>> {
    const blocks = await qmp.execute<Array<{ qdev?: string; inserted?: { iops: number; bps: number; group?: string } }>>("query-block");
    return blocks.flatMap((b) => {
      const id = b.qdev?.match(/^\/machine\/peripheral\/([^/]+)\/virtio-backend$/)?.[1];
      if (!id || !b.inserted) return [];
      const { iops, bps, group } = b.inserted;
      return [{ id, throttle: iops || bps ? { iops, bytesPerSec: bps, group: group ?? "" } : null }];
    });
  }

  async resizeDisk(qmp: QmpClient, id: string, sizeBytes: number): Promise<void> {
    await qmp.execute("block_resize", { "node-name": diskNodeName(id), size: sizeBytes });
  }

  async detachDisk(qmp: QmpClient, id: string, opts: { timeoutMs: number }): Promise<void> {
    // Listening before asking: the guest may release the device before device_del answers.
    const released = qmp.waitForEvent("DEVICE_DELETED", { timeoutMs: opts.timeoutMs, match: (e) => (e.data as { device?: string } | undefined)?.device === id });
    released.catch(() => undefined);
    // Gone already (an agent killed after the unplug, before it recorded it): only its nodes are left to drop.
    const present = await qmp.execute("device_del", { id }).then(
      () => true,
      (e: unknown) => {
        if (e instanceof QmpError && e.qmpClass === "DeviceNotFound") return false;
        throw e;
      },
    );
    if (present) {
      try {
        await released;
      } catch {
        throw new HypervisorError(HypervisorErrorCode.DiskBusy, `the guest did not release disk ${id} within ${opts.timeoutMs / 1000} s`);
      }
    }
    for (const node of [diskNodeName(id), diskFileNodeName(id)]) {
      await qmp.execute("blockdev-del", { "node-name": node }).catch((e: unknown) => {
        // Dropped already with the device's earlier unplug.
        if (!(e instanceof QmpError && /(failed to|cannot) find|not found/i.test(e.desc ?? e.message))) throw e;
      });
    }
  }

  async backupDisks(
    qmp: QmpClient,
    targets: readonly DiskBackup[],
    opts: { timeoutMs: number; onProgress?: (fraction: number) => void; afterStart?: () => void },
  ): Promise<void> {
    const stamp = Date.now().toString(36);
    const jobs = targets.map((t) => ({ ...t, job: `backup-${t.id}-${stamp}`, node: `backup-${t.id}-${stamp}-target` }));
    const added: string[] = [];
    let poll: NodeJS.Timeout | undefined;
    try {
      // Each target's own header names its backing image (the disk's base, for `top`). `no-flush`: the
      // copy's final flush would run in QEMU's main loop and stall the guest for as long (a third of
      // a second per GiB here); the caller makes the targets durable itself, outside QEMU.
      for (const j of jobs) {
        await qmp.execute("blockdev-add", { driver: "qcow2", "node-name": j.node, cache: { "no-flush": true }, file: { driver: "file", filename: j.targetPath } });
        added.push(j.node);
      }
      const ended = jobs.map((j) => {
        const p = qmp.waitForEvent("BLOCK_JOB_COMPLETED", { timeoutMs: opts.timeoutMs, match: (e) => (e.data as { device?: string } | undefined)?.device === j.job });
        p.catch(() => undefined);
        return p;
      });
      // One transaction: every disk is copied as of the same instant.
      await qmp.execute("transaction", {
        actions: jobs.map((j) => ({ type: "blockdev-backup", data: { "job-id": j.job, device: diskNodeName(j.id), target: j.node, sync: j.sync } })),
      });
      opts.afterStart?.();
      const ids = new Set(jobs.map((j) => j.job));
      if (opts.onProgress) {
        const report = opts.onProgress;
        poll = setInterval(() => {
          qmp.execute<{ id: string; "current-progress": number; "total-progress": number }[]>("query-jobs").then((list) => {
            const ours = list.filter((j) => ids.has(j.id));
            const total = ours.reduce((n, j) => n + j["total-progress"], 0);
            if (ours.length === jobs.length && total > 0) report(ours.reduce((n, j) => n + j["current-progress"], 0) / total);
          }, () => undefined);
        }, 250);
      }
      let events;
      try {
        events = await Promise.all(ended);
      } catch (e) {
        for (const j of jobs) await qmp.execute("block-job-cancel", { device: j.job, force: true }).catch(() => undefined);
        throw e;
      }
      const failed = events.map((e, i) => [jobs[i]!.id, (e.data as { error?: string } | undefined)?.error] as const).find(([, error]) => error);
      if (failed) throw new Error(`backup of disk ${failed[0]} failed: ${failed[1]}`);
      opts.onProgress?.(1);
    } finally {
      clearInterval(poll);
      for (const node of added) await qmp.execute("blockdev-del", { "node-name": node }).catch(() => undefined);
    }
  }

  async freezeGuest(qmp: QmpClient, runDir: string): Promise<boolean> {
    // Asked only of a guest that opened its end of the agent's channel: a guest without an agent
    // would otherwise cost every snapshot the agent call's whole timeout.
    const chardevs = await qmp.execute<{ label: string; "frontend-open": boolean }[]>("query-chardev");
    if (!chardevs.some((c) => c.label === GUEST_AGENT_CHARDEV && c["frontend-open"])) return false;
    try {
      await guestAgentCall(runPaths(runDir).guestAgentSocket, "guest-fsfreeze-freeze", undefined, { timeoutMs: FREEZE_TIMEOUT_MS });
      return true;
    } catch (err) {
      // An agent that cannot freeze (no freezable filesystem, a hook refused): a crash-consistent copy it is.
      this.log?.warn({ err }, "guest agent did not freeze the guest: copying crash-consistent");
      await this.thawGuest(runDir);
      return false;
    }
  }

  async thawGuest(runDir: string): Promise<void> {
    await guestAgentCall(runPaths(runDir).guestAgentSocket, "guest-fsfreeze-thaw", undefined, { timeoutMs: FREEZE_TIMEOUT_MS }).catch((err: unknown) => {
      this.log?.warn({ err }, "guest agent did not thaw the guest");
    });
  }

  async setUserPassword(runDir: string, username: string, password: string): Promise<void> {
    // The agent takes the password base64-encoded; `crypted: false` makes it hash it itself.
    await guestAgentCall(runPaths(runDir).guestAgentSocket, "guest-set-user-password", {
      username,
      password: Buffer.from(password, "utf8").toString("base64"),
      crypted: false,
    });
  }

  async quit(qmp: QmpClient, pid: number, runDir: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_EXIT_TIMEOUT_MS;
    try {
      await qmp.execute("quit", undefined, { timeoutMs });
    } catch (err) {
      this.log?.warn({ pid, err }, "QMP quit failed, killing QEMU");
    }
    if (!(await waitForExit(pid, timeoutMs))) await this.kill(pid, runDir, opts);
  }

  async kill(pid: number, runDir: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_EXIT_TIMEOUT_MS;
    if (!(await isQemuAlive(pid, runDir))) return;
    if (killQemu(pid, "SIGTERM") && (await waitForExit(pid, timeoutMs))) return;
    // SIGTERM unanswered: QEMU is stuck (e.g. in uninterruptible I/O). Check again: the pid may have been reused.
    if (!(await isQemuAlive(pid, runDir))) return;
    this.log?.warn({ pid }, "QEMU ignored SIGTERM, sending SIGKILL");
    if (killQemu(pid, "SIGKILL") && !(await waitForExit(pid, timeoutMs))) {
      throw new HypervisorError(HypervisorErrorCode.ExitTimeout, `QEMU pid ${pid} did not exit after SIGKILL`);
    }
  }

  stats(qmp: QmpClient, pid: number, nics: readonly NicRef[] = []): Promise<QemuStats> {
    return collectQemuStats(qmp, pid, nics);
  }
}

/** The QOM path of virtio-blk device `id`'s block backend (what block_set_io_throttle names). */
const virtioBackendPath = (id: string): string => `/machine/peripheral/${id}/virtio-backend`;
