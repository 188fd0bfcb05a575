import { EventEmitter } from "node:events";
import { copyFile, rm, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Hypervisor } from "../hypervisor/driver.js";
import type { QmpClient } from "../hypervisor/qemu/qmp/client.js";
import { DEBIAN_OVMF, runPaths, type DiskSpec } from "../hypervisor/qemu/spec.js";
import type { AcceleratorChoice } from "../hypervisor/accel.js";
import { vmDir, SYSTEM_DISK_FILE, DATA_DISK_FILE, resolveDataFile } from "../storage/volumes.js";
import type { Logger } from "../lib/logger.js";
import { killPoint } from "../lib/kill-points.js";
import type { ImageCatalog } from "./images.js";
import { macFor, toQemuSpec } from "./qemu-spec.js";
import type { GuestNetwork } from "./guest-network.js";
import { diskThrottleOf, NO_IO_LIMITS, type IoLimits } from "./io-limits.js";
import type { GuestGpus } from "./guest-gpus.js";
import { writeNoCloudSeed } from "../storage/cloud-init-seed.js";
import type { VmRecord, VmRepo } from "./repo.js";
import { waitForMarker } from "./ready-watch.js";
import { rotateSerialLog } from "./serial-log.js";

/** How often a running VM's console log is checked against its cap. */
const SERIAL_LOG_CHECK_MS = 5_000;
import type { VmStatus } from "./state.js";
import { lanMac } from "../network/lan/model.js";

/** A running VM as sibling services act on it: its QEMU process and the agent's one QMP connection to it. */
export interface LiveVm {
  readonly pid: number;
  readonly qmp: QmpClient;
}

/** A VM whose QEMU this agent is connected to. */
interface Live extends LiveVm {
  ready: AbortController;
  /** Rotates the console log past its cap while the VM runs (see serial-log.ts). */
  logKeeper: NodeJS.Timeout;
  /** Set while an operation stops the VM on purpose, so the exit is not reported as a crash. */
  stopping: boolean;
  /** Set when the agent lets go of a VM that keeps running (its shutdown): its network stays. */
  detached?: boolean;
}

export interface VmChange {
  id: string;
  status: VmStatus | "deleted";
  ready: boolean;
}

export interface RuntimeOptions {
  dataDir: string;
  hypervisor: Hypervisor;
  repo: VmRepo;
  images: ImageCatalog;
  accel: AcceleratorChoice;
  forwardHost: string;
  network: GuestNetwork;
  /** How VMs get GPUs (passthrough), or none. */
  gpus: GuestGpus;
  /** A VM's caps on disk I/O and network, as they apply at its boot; default none. */
  ioLimits?: (vm: VmRecord) => IoLimits;
  log: Logger;
}

/**
 * The running side of VMs: boots QEMU for a VM record, keeps one QMP connection per VM, turns QMP
 * events and process exits into status changes, and watches for the guest becoming ready.
 */
export class VmRuntime extends EventEmitter<{ change: [VmChange] }> {
  private readonly live = new Map<string, Live>();

  constructor(private readonly opts: RuntimeOptions) {
    super();
  }

  isLive(id: string): boolean {
    return this.live.has(id);
  }

  pidOf(id: string): number | undefined {
    return this.live.get(id)?.pid;
  }

  qmpOf(id: string): QmpClient | undefined {
    return this.live.get(id)?.qmp;
  }

  /** The VM's QEMU process and QMP connection, while it runs. */
  liveOf(id: string): LiveVm | undefined {
    const entry = this.live.get(id);
    return entry && { pid: entry.pid, qmp: entry.qmp };
  }

  runDir(id: string): string {
    return vmDir(this.opts.dataDir, id);
  }

  /** Records a status change and tells listeners (the event stream). */
  setStatus(id: string, status: VmStatus, extra: { lastError?: string | null; ready?: boolean } = {}): void {
    this.opts.repo.update(id, { status, ...extra });
    const vm = this.opts.repo.get(id);
    this.emit("change", { id, status, ready: vm?.ready ?? false });
  }

  /** Starts QEMU for the VM and connects to it; the VM is `running` (not yet ready) when this resolves. */
  async boot(vm: VmRecord): Promise<void> {
    const { spec } = vm;
    const image = this.opts.images.resolve(vm.imageName);
    const runDir = this.runDir(vm.id);
    const disks: DiskSpec[] = [{ id: "vda", path: join(runDir, SYSTEM_DISK_FILE), format: "qcow2" }];
    if (spec.dataFileName) {
      disks.push({ id: "vdb", path: await resolveDataFile(this.opts.dataDir, spec.dataFileName), format: spec.dataFileFormat ?? "qcow2" });
    } else if (spec.dataDiskBytes) {
      disks.push({ id: "vdb", path: join(runDir, DATA_DISK_FILE), format: "qcow2" });
    }
    for (const d of spec.extraDisks ?? []) disks.push({ id: d.name, path: join(runDir, `${d.name}.qcow2`), format: "qcow2" });
    // Secrets reach QEMU through 0600 files, never its command line; removed once QEMU has read them.
    const secrets = startSecretFiles(runDir);
    await writeFile(secrets.vnc, spec.vncPassword, { mode: 0o600 });
    await writeFile(secrets.password, spec.loginPassword, { mode: 0o600 });
    await writeFile(secrets.hostname, hostnameFor(vm), { mode: 0o600 });
    // A cloud-init guest learns its host name, login user and password from a seed disk (it holds
    // the password: removed with the other secrets once QEMU holds it open).
    if (image.cloudInit) {
      await writeNoCloudSeed(secrets.seed, {
        instanceId: vm.id,
        hostname: hostnameFor(vm),
        user: spec.loginUser,
        password: spec.loginPassword,
        macAddress: macFor(vm.id),
        ...(spec.lan ? { lanMacAddress: lanMac(spec.lan.network, spec.lan.ip) } : {}),
      });
    }
    const ovmfVarsPath = join(runDir, "OVMF_VARS.fd");
    if (spec.biosMode === "uefi" && !existsSync(ovmfVarsPath)) await copyFile(DEBIAN_OVMF.varsTemplatePath, ovmfVarsPath);

    // GPUs first: a host without one free refuses the boot before anything else is made for it.
    const gpus = await this.opts.gpus.prepare(vm);
    const network = await this.opts.network.prepare(vm, hostnameFor(vm)).catch(async (e: unknown) => {
      await this.opts.gpus.ended(vm.id).catch(() => undefined);
      throw e;
    });
    const qemuSpec = toQemuSpec(vm.id, spec, image, {
      gpus,
      runDir,
      accel: this.opts.accel.accel,
      cpuModel: this.opts.accel.cpuModel,
      disks,
      nics: network.nics,
      kernelArgs: network.kernelArgs,
      forwardHost: this.opts.forwardHost,
      vncPasswordFile: secrets.vnc,
      fwCfg: [
        { name: "opt/batu/password", file: secrets.password },
        { name: "opt/batu/hostname", file: secrets.hostname },
      ],
      ovmfVarsPath,
      ...(image.cloudInit ? { seedDisk: secrets.seed } : {}),
    });
    try {
      const { pid } = await this.opts.hypervisor.start(qemuSpec).catch(async (e: unknown) => {
        await this.opts.network.ended(vm.id).catch(() => undefined);
        await this.opts.gpus.ended(vm.id).catch(() => undefined);
        throw e;
      });
      killPoint("vm.boot.after-spawn");
      await this.attach(vm.id, pid, { readyFromStart: true });
      this.opts.repo.update(vm.id, { pid, startedAt: new Date().toISOString(), ready: false });
      await this.opts.network.started(vm.id);
      await this.capDisks(vm, disks.map((d) => d.id));
      await this.opts.gpus.started(vm.id, pid).catch((e: unknown) => this.opts.log.warn({ vm: vm.id, err: e }, "the VM could not be pinned to its GPUs' NUMA node"));
    } finally {
      await Promise.all(Object.values(secrets).map((f) => rm(f, { force: true })));
    }
  }

  /** A VM's caps on disk I/O and network, as they apply now (its grant's, else the operator's defaults). */
  ioLimitsOf(vm: VmRecord): IoLimits {
    return this.opts.ioLimits?.(vm) ?? NO_IO_LIMITS;
  }

  /**
   * Caps the disks `ids` of a running VM (one QEMU throttle group: the cap is the VM's, all its disks
   * together). A cap QEMU refuses is logged and left: the VM runs, uncapped, rather than not at all.
   */
  async capDisks(vm: VmRecord, ids: readonly string[]): Promise<void> {
    const throttle = diskThrottleOf(this.ioLimitsOf(vm));
    const qmp = this.qmpOf(vm.id);
    if (!throttle || !qmp) return;
    for (const id of ids) {
      await this.opts.hypervisor.throttleDisk(qmp, id, throttle).catch((e: unknown) => {
        this.opts.log.error({ vm: vm.id, disk: id, err: e }, "the disk's I/O cap could not be set");
        this.opts.repo.log(vm.id, `disk ${id}: I/O cap not set (${e instanceof Error ? e.message : String(e)})`);
      });
    }
  }

  /**
   * Removes the secret files a boot writes for QEMU to read at start. A boot removes them itself; an
   * agent killed mid-boot leaves them (reconcile calls this for every VM folder).
   */
  async clearStartSecrets(runDir: string): Promise<void> {
    await Promise.all(Object.values(startSecretFiles(runDir)).map((f) => rm(f, { force: true })));
  }

  /** Connects to a running QEMU (just started, or adopted after an agent restart) and watches it. */
  async attach(id: string, pid: number, opts: { readyFromStart: boolean; alreadyReady?: boolean }): Promise<void> {
    const qmp = await this.opts.hypervisor.connect(this.runDir(id), { deadlineMs: 15_000 });
    const log = this.opts.log.child({ vm: id });
    const { serialLog } = runPaths(this.runDir(id));
    const logKeeper = setInterval(() => {
      rotateSerialLog(serialLog)
        .then((rotated) => rotated && log.info("console log rotated"))
        .catch((e: unknown) => log.warn({ err: e }, "console log rotation failed"));
    }, SERIAL_LOG_CHECK_MS).unref();
    const entry: Live = { pid, qmp, ready: new AbortController(), logKeeper, stopping: false };
    this.live.set(id, entry);
    qmp.on("event", (e) => {
      switch (e.event) {
        case "SHUTDOWN":
          this.opts.repo.log(id, `guest shutdown (${JSON.stringify(e.data ?? {})})`);
          break;
        case "RESET":
          this.opts.repo.log(id, "guest reset");
          this.opts.repo.update(id, { ready: false });
          this.watchReady(id, entry, false);
          break;
        case "STOP":
        case "RESUME":
        case "POWERDOWN":
          this.opts.repo.log(id, `qemu event ${e.event}`);
          break;
      }
    });
    qmp.on("close", () => {
      entry.ready.abort();
      clearInterval(entry.logKeeper);
      if (this.live.get(id) === entry) this.live.delete(id);
      if (!entry.detached) {
        this.opts.network.ended(id).catch((e: unknown) => log.warn({ err: e }, "the vm's network could not be taken down"));
        this.opts.gpus.ended(id).catch((e: unknown) => log.warn({ err: e }, "the vm's GPUs could not be freed"));
      }
      if (entry.stopping) return;
      // QEMU went away by itself: the guest powered off, or the process died.
      const vm = this.opts.repo.get(id);
      if (!vm) return;
      log.info({ pid }, "vm process ended");
      this.opts.repo.log(id, "qemu process ended");
      this.setStatus(id, "closed", { ready: false, ...(vm.status === "running" ? {} : { lastError: `ended while ${vm.status}` }) });
      this.opts.repo.update(id, { pid: null });
    });
    if (!opts.alreadyReady) this.watchReady(id, entry, opts.readyFromStart);
  }

  private watchReady(id: string, entry: Live, fromStart: boolean): void {
    entry.ready.abort();
    entry.ready = new AbortController();
    const vm = this.opts.repo.get(id);
    if (!vm) return;
    let marker: string | null;
    try {
      marker = this.opts.images.resolve(vm.imageName).readyMarker;
    } catch {
      return;
    }
    if (!marker) return;
    const signal = entry.ready.signal;
    const { serialLog } = runPaths(this.runDir(id));
    void (async () => {
      const fromOffset = fromStart ? 0 : await fileSize(serialLog);
      const ready = await waitForMarker(serialLog, marker, signal, { fromOffset });
      if (!ready || !this.opts.repo.exists(id)) return;
      this.opts.repo.update(id, { ready: true });
      this.opts.repo.log(id, "guest ready");
      const now = this.opts.repo.get(id)!;
      this.emit("change", { id, status: now.status, ready: true });
    })().catch((e: unknown) => this.opts.log.warn({ vm: id, err: e }, "ready watch failed"));
  }

  /** Marks the VM as being stopped on purpose (its exit is expected) and returns its handles. */
  expectExit(id: string): Live | undefined {
    const entry = this.live.get(id);
    if (entry) entry.stopping = true;
    return entry;
  }

  /** Waits until the VM's QEMU has exited, up to timeoutMs; true when it did. */
  async waitExit(id: string, timeoutMs: number): Promise<boolean> {
    const entry = this.live.get(id);
    if (!entry) return true;
    const closed = entry.qmp.whenClosed().then(() => true);
    const timer = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref());
    const done = await Promise.race([closed, timer]);
    if (!done) return false;
    return !(await this.opts.hypervisor.isAlive(entry.pid, this.runDir(id)));
  }

  /** Power cut: QEMU quits at once (killed if it lingers). */
  async powerOff(id: string): Promise<void> {
    const entry = this.expectExit(id);
    if (entry) {
      await this.opts.hypervisor.quit(entry.qmp, entry.pid, this.runDir(id));
      entry.ready.abort();
      clearInterval(entry.logKeeper);
      this.live.delete(id);
    } else {
      const pid = await this.opts.hypervisor.findRunning(this.runDir(id));
      if (pid !== null) await this.opts.hypervisor.kill(pid, this.runDir(id));
    }
    await this.opts.network.ended(id);
    await this.opts.gpus.ended(id);
    this.opts.repo.update(id, { pid: null, ready: false });
  }

  /** Disconnects from every VM, leaving them running (agent shutdown). */
  async detachAll(): Promise<void> {
    const entries = [...this.live.values()];
    this.live.clear();
    for (const e of entries) {
      e.stopping = true;
      e.detached = true;
      e.ready.abort();
      clearInterval(e.logKeeper);
      await e.qmp.close();
    }
  }
}

/** The 0600 files a boot hands QEMU its secrets in (VNC password, guest password, hostname, cloud-init seed). */
function startSecretFiles(runDir: string): { vnc: string; password: string; hostname: string; seed: string } {
  return {
    vnc: join(runDir, "vnc.secret"),
    password: join(runDir, "fwcfg-password"),
    hostname: join(runDir, "fwcfg-hostname"),
    seed: join(runDir, "cloud-init-seed.img"),
  };
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** The guest's hostname: the nickname when it is a valid one, else batu-<id prefix>. */
export function hostnameFor(vm: Pick<VmRecord, "id" | "nickname">): string {
  const nick = vm.nickname.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "").slice(0, 63);
  return nick || `batu-${vm.id.slice(0, 8).toLowerCase()}`;
}
