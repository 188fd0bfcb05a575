import type { QmpClient, QmpConnectOptions } from "./qemu/qmp/client.js";
import type { DiskSpec, DiskThrottle, HostForward, QemuSpec } from "./qemu/spec.js";
import type { NicRef, QemuStats } from "./qemu/stats.js";

/**
 * What the VM service needs from a hypervisor. A VM is a daemonized process that outlives the
 * agent: it is named by (pid, runDir), and driven over the QMP client that `connect` returns.
 * Keep one QMP client per VM (QEMU serves one QMP client at a time) and watch its events.
 */
export interface Hypervisor {
  /**
   * Starts the VM daemonized; its vCPUs run at once, or wait for `resume` when `paused`.
   * Rejects with ExecError (carrying QEMU's stderr) or HypervisorError "already_running".
   */
  start(spec: QemuSpec, opts?: { paused?: boolean; signal?: AbortSignal }): Promise<{ pid: number }>;
  /** Connects to the VM's QMP socket in runDir, retrying until it appears; also how a restarted agent adopts a VM. */
  connect(runDir: string, opts?: QmpConnectOptions): Promise<QmpClient>;
  /** The pid of the VM running from runDir, or null (adoption after an agent restart). */
  findRunning(runDir: string): Promise<number | null>;
  /** True when pid is alive and is the QEMU of runDir (not a recycled pid). */
  isAlive(pid: number, runDir: string): Promise<boolean>;
  /** ACPI power button: the guest may shut down (SHUTDOWN event, guest: true) or ignore it. */
  powerdown(qmp: QmpClient): Promise<void>;
  /** Hard reset, like the reset button. */
  reset(qmp: QmpClient): Promise<void>;
  /** Freezes the vCPUs (QMP stop). */
  pause(qmp: QmpClient): Promise<void>;
  /** Runs the vCPUs again (QMP cont); also starts a VM begun with -S. */
  resume(qmp: QmpClient): Promise<void>;
  /** Power cut: QEMU exits at once. Resolves once the process has gone, killing it if it lingers. */
  quit(qmp: QmpClient, pid: number, runDir: string, opts?: { timeoutMs?: number }): Promise<void>;
  /** For a VM whose QMP does not answer: SIGTERM, then SIGKILL after timeoutMs. No-op if it is not runDir's QEMU. */
  kill(pid: number, runDir: string, opts?: { timeoutMs?: number }): Promise<void>;
  /**
   * Changes a running VM's host forwards on its user-mode NIC `nicId` at once: `remove` first, then
   * `add`. Rejects with the hypervisor's own words when one is refused (a port taken on the host).
   */
  updateHostForwards(qmp: QmpClient, nicId: string, change: { remove: readonly HostForward[]; add: readonly HostForward[] }): Promise<void>;
  /** The host forwards a running VM's user-mode NIC `nicId` has now (what `updateHostForwards` changes). */
  hostForwards(qmp: QmpClient, nicId: string): Promise<HostForward[]>;
  /**
   * Sets a guest user's password through the guest agent (the VM must have been started with
   * `guestAgent`). Rejects with GuestAgentError: `not_responding` for a guest without an agent.
   */
  setUserPassword(runDir: string, username: string, password: string): Promise<void>;
  /** Plugs a disk into a running VM (virtio-blk on the PCI bus): the guest sees it at once. All or nothing. */
  attachDisk(qmp: QmpClient, disk: DiskSpec): Promise<void>;
  /** Caps a running VM's disk `id` (null: lifts its cap). Disks given the same group share one cap. */
  throttleDisk(qmp: QmpClient, id: string, throttle: DiskThrottle | null): Promise<void>;
  /** Each disk's cap now, as the hypervisor reports it (null: none). */
  diskThrottles(qmp: QmpClient): Promise<Array<{ id: string; throttle: DiskThrottle | null }>>;
  /** Grows a running VM's disk `id` to `sizeBytes` (the guest is told of the new size). */
  resizeDisk(qmp: QmpClient, id: string, sizeBytes: number): Promise<void>;
  /**
   * Unplugs disk `id` from a running VM once its guest releases it; rejects with `disk_busy` when the
   * guest has not within `timeoutMs` (the disk then stays, and is gone at its next boot if unrecorded).
   */
  detachDisk(qmp: QmpClient, id: string, opts: { timeoutMs: number }): Promise<void>;
  /**
   * Copies running VM disks into `targets` as of one instant, while the guest runs on (backup block
   * jobs started in one QMP transaction: copy-before-write, no pause). `afterStart` is called once
   * that instant is fixed (the jobs started), e.g. to thaw a frozen guest; progress (0…1, over all
   * disks) goes to `onProgress`. Resolves when every copy is complete (written, not yet flushed to
   * disk: the caller fsyncs the targets); a failed one cancels the rest.
   */
  backupDisks(qmp: QmpClient, targets: readonly DiskBackup[], opts: { timeoutMs: number; onProgress?: (fraction: number) => void; afterStart?: () => void }): Promise<void>;
  /**
   * Freezes the guest's filesystems through its guest agent (writes flushed, the disks consistent)
   * when the guest has its agent up; answers whether it did. A frozen guest must be thawed
   * (`thawGuest`) at once after what needed it: its writes wait meanwhile.
   */
  freezeGuest(qmp: QmpClient, runDir: string): Promise<boolean>;
  /** Thaws a guest `freezeGuest` froze; a no-op for one that is not frozen. */
  thawGuest(runDir: string): Promise<void>;
  /** CPU, memory, disk and NIC counters (NIC bytes are null where QEMU offers no source). */
  stats(qmp: QmpClient, pid: number, nics?: readonly NicRef[]): Promise<QemuStats>;
}

/** One disk copy of `backupDisks`. */
export interface DiskBackup {
  /** The VM's disk: vda, vdb… */
  id: string;
  /** An existing qcow2 of the disk's size: backed by the disk's own base for `top`, standalone for `full`. */
  targetPath: string;
  /** `top`: what the disk holds over its backing image; `full`: all of it. */
  sync: "top" | "full";
}

/** Why a hypervisor operation failed; decide on `code`. */
export const HypervisorErrorCode = {
  /** start: a QEMU already runs from this runDir. */
  AlreadyRunning: "already_running",
  /** quit/kill: the process outlived SIGKILL's grace period. */
  ExitTimeout: "exit_timeout",
  /** detachDisk: the guest did not release the disk in time. */
  DiskBusy: "disk_busy",
  /** attachDisk: a q35 VM's spare root ports are all taken (a boot gives every disk a place again). */
  NoHotplugPort: "no_hotplug_port",
} as const;
export type HypervisorErrorCode = (typeof HypervisorErrorCode)[keyof typeof HypervisorErrorCode];

export class HypervisorError extends Error {
  constructor(
    readonly code: HypervisorErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "HypervisorError";
  }
}
