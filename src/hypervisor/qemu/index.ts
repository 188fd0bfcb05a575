import { mkdir, writeFile } from "node:fs/promises";
import type { Logger } from "../../lib/logger.js";
import { HypervisorError, HypervisorErrorCode, type Hypervisor } from "../driver.js";
import { buildQemuArgv } from "./argv.js";
import { isQemuAlive, killQemu, QEMU_BINARY, readPidFile, startQemu, waitForExit } from "./process.js";
import { QmpClient, type QmpConnectOptions } from "./qmp/client.js";
import { QmpError } from "./qmp/errors.js";
import { diskFileNodeName, diskNodeName, nicNetdevId, runPaths, type DiskSpec, type HostForward, type QemuSpec } from "./spec.js";
import { guestAgentCall } from "./qga.js";
import { parseUsernetForwards } from "./usernet.js";
import { collectQemuStats, type NicRef, type QemuStats } from "./stats.js";

export interface QemuHypervisorOptions {
  /** @default "qemu-system-x86_64" */
  binary?: string;
  logger?: Logger;
}

const DEFAULT_EXIT_TIMEOUT_MS = 5_000;

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
      await qmp.execute("device_add", { driver: "virtio-blk-pci", id: disk.id, drive: node });
    } catch (e) {
      for (const name of undo) await qmp.execute("blockdev-del", { "node-name": name }).catch(() => undefined);
      throw e;
    }
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

  async backupDisk(qmp: QmpClient, id: string, targetPath: string, opts: { timeoutMs: number }): Promise<void> {
    const job = `backup-${id}-${Date.now().toString(36)}`;
    const target = `${job}-target`;
    // The target's own header names its backing image (the disk's base): only the top layer is copied.
    await qmp.execute("blockdev-add", { driver: "qcow2", "node-name": target, file: { driver: "file", filename: targetPath } });
    try {
      const ended = qmp.waitForEvent("BLOCK_JOB_COMPLETED", { timeoutMs: opts.timeoutMs, match: (e) => (e.data as { device?: string } | undefined)?.device === job });
      ended.catch(() => undefined);
      await qmp.execute("blockdev-backup", { "job-id": job, device: diskNodeName(id), target, sync: "top" });
      let event;
      try {
        event = await ended;
      } catch (e) {
        await qmp.execute("block-job-cancel", { device: job, force: true }).catch(() => undefined);
        throw e;
      }
      const error = (event.data as { error?: string } | undefined)?.error;
      if (error) throw new Error(`backup of disk ${id} failed: ${error}`);
    } finally {
      await qmp.execute("blockdev-del", { "node-name": target }).catch(() => undefined);
    }
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
