import { rm } from "node:fs/promises";
import type { Hypervisor } from "../hypervisor/driver.js";
import { createVmVolumes, removeVmVolumes, VolumeError, checkVmId } from "../storage/volumes.js";
import { Reverter } from "../lib/reverter.js";
import { killPoint } from "../lib/kill-points.js";
import type { Logger } from "../lib/logger.js";
import { ImageCatalog, ImageError } from "./images.js";
import { FieldError, newVmId, specFrom, type VmCreateRequest } from "./create-request.js";
import { KeyedMutex } from "./keyed-mutex.js";
import type { VmRecord, VmRepo } from "./repo.js";
import { checkFit, checkRenterDisk, committed, demandOf, type HostCapacity } from "./resources.js";
import type { LiveVm, VmRuntime } from "./runtime.js";
import { planAction, TRANSITIONAL, type VmAction, type VmStatus } from "./state.js";
import { VmConflictError, VmNotFoundError, VmResourceError } from "./errors.js";
import { reconcile, type ReconcileReport } from "./reconcile.js";
import type { Operation, Operations, ProgressReporter } from "./operations.js";
import { applyModify, type VmModify } from "./modify.js";
import type { GuestNetwork } from "./guest-network.js";
import type { GuestGpus } from "./guest-gpus.js";
import { heldBy, modifyQuotaRefusal, quotaRefusal, startQuotaRefusal } from "../rental/quota.js";
import { withGrantIo } from "./io-limits.js";
import type { RentalLimits } from "../auth/rental-ledger.js";
import type { VmPortReservations } from "./ports.js";

export { VmNotFoundError, VmConflictError, VmResourceError } from "./errors.js";

export interface VmServiceOptions {
  dataDir: string;
  hypervisor: Hypervisor;
  repo: VmRepo;
  images: ImageCatalog;
  ports: VmPortReservations;
  runtime: VmRuntime;
  operations: Operations;
  /** The host's capacity now (free disk changes). */
  capacity: () => Promise<HostCapacity>;
  /** Address host forwards and VNC listen on. */
  forwardHost: string;
  /** How VMs are connected to the host's network. */
  network: GuestNetwork;
  /** How VMs get GPUs. */
  gpus: GuestGpus;
  /** How long a graceful shutdown waits for the guest before powering off. */
  shutdownTimeoutMs: number;
  /** Why no VM may start on this host now (its operator cordoned it), or null; default never. */
  admission?: () => string | null;
  log: Logger;
}

/**
 * The VM lifecycle coordinator, for both faces (host API and DBC API): create, the actions of the
 * state machine, and changes to a VM's shape. Operations on one VM run one at a time (its lock);
 * operations on different VMs run concurrently. Reads live in `VmQueries`; sibling services (disks,
 * snapshots, GPUs) act on a VM through `exclusive`.
 */
export class VmService {
  private readonly locks = new KeyedMutex();
  /** VM ids, and owners' task ids, claimed by a creation not yet recorded: a second creation of one is refused, never raced. */
  private readonly claimed = new Set<string>();

  constructor(private readonly opts: VmServiceOptions) {}

  /** Refuses a VM start on a host its operator cordoned (host/maintenance.ts). */
  private admit(): void {
    const refusal = this.opts.admission?.();
    if (refusal) throw new VmConflictError(refusal);
  }

  /** Adopts running VMs and cleans up after the last agent; call once at start, before serving. */
  reconcile(): Promise<ReconcileReport> {
    return reconcile(this.opts);
  }

  /**
   * Runs `work` under VM `id`'s lock, with its record and its running QEMU (undefined while it is shut
   * off): no lifecycle action runs on the VM meanwhile. Refused while an operation is under way.
   * The seam through which other domains change a VM.
   */
  exclusive<T>(id: string, work: (vm: VmRecord, live: LiveVm | undefined) => Promise<T>): Promise<T> {
    return this.locks.run(id, async () => {
      const vm = this.get(id);
      if (TRANSITIONAL.has(vm.status)) throw new VmConflictError(`vm is ${vm.status}`);
      return work(vm, this.opts.runtime.liveOf(id));
    });
  }

  /**
   * Runs another domain's change of VM `id` (a disk added, grown or removed) under its lock, the VM
   * showing `during` meanwhile and what it showed before afterwards; a failure is logged and kept as
   * the VM's last error (`work` logs what it did). Refused while an operation is under way.
   */
  operate<T>(id: string, during: VmStatus, work: (vm: VmRecord, live: LiveVm | undefined) => Promise<T>): Promise<T> {
    return this.locks.run(id, async () => {
      const vm = this.get(id);
      if (TRANSITIONAL.has(vm.status)) throw new VmConflictError(`vm is ${vm.status}`);
      this.opts.runtime.setStatus(id, during);
      try {
        const result = await work(vm, this.opts.runtime.liveOf(id));
        this.opts.runtime.setStatus(id, vm.status);
        return result;
      } catch (e) {
        const message = errorText(e);
        this.opts.repo.log(id, `${during} failed: ${message}`);
        this.opts.runtime.setStatus(id, vm.status, { lastError: message });
        throw e;
      }
    });
  }

  /**
   * Starts another domain's long change of VM `id` (`work`, which takes the VM's lock itself, e.g. through
   * `operate`) and answers at once with the operation that follows it to its end.
   */
  beginOperation(id: string, action: string, work: (progress: ProgressReporter) => Promise<unknown>): Operation {
    const op = this.opts.operations.begin(this.get(id), action);
    this.opts.operations.track(op, work(this.opts.operations.reporter(op))).catch(() => undefined);
    return op;
  }

  /**
   * Starts an action and answers at once (DBC's asynchronous style): refused now if the VM is busy
   * or its state forbids it; otherwise the returned operation tracks it to the end.
   */
  begin(id: string, action: VmAction, opts: { force?: boolean; quota?: RentalLimits } = {}): Operation {
    const vm = this.get(id);
    if (this.locks.busy(id) || TRANSITIONAL.has(vm.status)) throw new VmConflictError(`vm is ${vm.status}`);
    const alive = this.opts.runtime.isLive(id);
    const plan = planAction(action, vm.status, alive);
    if ("refused" in plan) throw new VmConflictError(plan.refused);
    // A boot under the renter's rental as it is now: refused here, so the caller hears why.
    const boots = action === "start" || (action === "restart" && !alive);
    if (boots) this.admit();
    const over = boots && opts.quota ? startQuotaRefusal(opts.quota, vm, this.opts.repo.list()) : null;
    if (over) throw new VmResourceError(over.field, over.message);
    // The grant's caps on disk I/O and network as they are now apply from this boot.
    const regranted = boots && opts.quota ? withGrantIo(vm.spec, opts.quota) : null;
    if (regranted) this.opts.repo.update(id, { spec: regranted });
    const op = this.opts.operations.begin(vm, action);
    this.opts.operations.track(op, this.act(id, action, opts)).catch(() => undefined);
    return op;
  }

  /**
   * Changes a VM as DBC's `tasks/modify` does: forwarded ports at once (live on a running VM); a new
   * VNC port, CPU and memory stored and used from the next boot. Answers whether part of the change
   * waits for the next boot. CPU and memory must fit beside what the other VMs hold now.
   */
  modify(id: string, change: VmModify, quota?: RentalLimits): Promise<{ nextBoot: boolean }> {
    return this.exclusive(id, async (vm, live) => {
      if (quota && vm.owner !== null) {
        const over = modifyQuotaRefusal(quota, vm.spec, applyModify(vm.spec, change).next, heldBy(vm.owner, this.opts.repo.list(), vm.id));
        if (over) throw new VmResourceError(over.field, over.message);
      }
      if (change.gpuCount !== undefined && change.gpuCount !== vm.spec.gpuCount) {
        const refusal = await this.opts.gpus.refusal(change.gpuCount, id);
        if (refusal) throw new VmResourceError("new_gpu_count", refusal);
      }
      if (change.sshPort !== undefined && change.sshPort === (change.rdpPort ?? vm.spec.ports.rdp)) {
        throw new FieldError("new_ssh_port", "new_ssh_port and new_rdp_port are the same!");
      }
      const { next, nextBoot } = applyModify(vm.spec, change);
      const netRefusal = this.opts.network.refusal(next, id);
      if (netRefusal) throw new FieldError(`new_${netRefusal.field}`, netRefusal.message);
      const sized = demandOf(next);
      if (sized.vcpus !== demandOf(vm.spec).vcpus || sized.memoryBytes !== demandOf(vm.spec).memoryBytes) {
        const refusal = checkFit(await this.opts.capacity(), committed(this.opts.repo.list(), id), { ...sized, diskBytes: 0 });
        if (refusal) throw new VmResourceError(refusal.field === "cpu" ? "new_cpu_cores" : "new_mem_size", refusal.field === "cpu" ? "allocate cpu failed" : "allocate memory failed");
      }
      // A running VM listens on its VNC port until its next boot: it stays held until then.
      const keep = next.ports.vnc !== vm.spec.ports.vnc && live ? [{ port: vm.spec.ports.vnc, proto: "tcp" as const }] : [];
      // Records `next` with its ports in one write, once a running VM's forwards have moved.
      await this.opts.ports.change(id, { from: vm.spec, to: next, keep }, async () => {
        if (live) await this.opts.network.changed(vm, next, live.qmp);
        killPoint("vm.modify.after-live-forwards");
      });
      killPoint("vm.modify.saved");
      this.opts.repo.log(id, `modified: ${JSON.stringify(change)}${nextBoot ? " (some changes take effect on the next boot)" : ""}`);
      return { nextBoot };
    });
  }

  /**
   * DBC's `tasks/passwd`: sets a guest user's password through the guest agent (DBC's checks, in
   * DBC's order). The stored login password follows when it is the login user's. The password is
   * never logged. Rejects with GuestAgentError when the guest has no agent answering.
   */
  setPassword(id: string, username: string, password: string): Promise<void> {
    return this.exclusive(id, async (vm, live) => {
      if (!live) throw new VmConflictError("Only the running task can change the password");
      if (!password) throw new FieldError("password", "password can not be empty");
      if (!username) throw new FieldError("username", "user name can not be empty");
      await this.opts.hypervisor.setUserPassword(this.opts.runtime.runDir(id), username, password);
      killPoint("vm.passwd.after-guest");
      if (username === vm.spec.loginUser) this.opts.repo.update(id, { spec: { ...vm.spec, loginPassword: password } });
      this.opts.repo.log(id, `password of user ${username} changed`);
    });
  }

  /**
   * Creates a VM: checks it fits, reserves its ports, records it as `creating`, then makes its disks
   * and boots it. With `wait`, resolves once it runs (and on failure leaves nothing behind); without,
   * resolves at once and a failure shows as `create error` (everything but the record released).
   */
  async create(req: VmCreateRequest, opts: { wait: boolean }): Promise<VmRecord & { operationId: string }> {
    this.admit();
    const taskId = req.id ?? newVmId();
    try {
      checkVmId(taskId);
    } catch {
      throw new FieldError("task_id", "task id requires a combination of letters or numbers");
    }
    // A task id is unique among its owner's tasks only: were another owner's VM of that id refused,
    // the refusal would tell a stranger that it exists. The new VM then gets a fresh id of its own.
    const task = `task:${req.owner ?? ""}:${taskId}`;
    if (this.claimed.has(task) || this.opts.repo.getByTask(req.owner, taskId)) throw new FieldError("task_id", "task id already existed");
    const id = this.claimed.has(taskId) || this.opts.repo.exists(taskId) ? newVmId() : taskId;
    // Claimed before the first await: two creations of one id would otherwise share its ports (their owner).
    this.claimed.add(task).add(id);
    try {
      return await this.createClaimed(id, taskId, req, opts);
    } finally {
      this.claimed.delete(task);
      this.claimed.delete(id);
    }
  }

  private async createClaimed(id: string, taskId: string, req: VmCreateRequest, opts: { wait: boolean }): Promise<VmRecord & { operationId: string }> {
    let loginUser: string;
    try {
      const image = this.opts.images.resolve(req.imageName);
      // A renter's own image (its snapshot) is no other renter's to boot, nor a hint that it exists.
      if (image.owner !== undefined && req.owner !== null && image.owner !== req.owner) throw new ImageError(`'image_name' is not exist: ${req.imageName}`);
      loginUser = image.loginUser;
    } catch (e) {
      if (e instanceof ImageError) throw new FieldError("image_name", e.message);
      throw e;
    }
    const quotaCheck = (all: readonly VmRecord[]) => {
      if (!req.quota || req.owner === null) return;
      const over = quotaRefusal(req.quota, heldBy(req.owner, all), { gpus: req.gpuCount, vcpus: req.vcpus, memoryBytes: req.memoryBytes, diskBytes: req.dataDiskBytes ?? 0 });
      if (over) throw new VmResourceError(over.field, over.message);
    };
    // Early, to refuse before any work; again beside the insert, where concurrent creations see each other.
    quotaCheck(this.opts.repo.list());
    const gpuRefusal = await this.opts.gpus.refusal(req.gpuCount);
    if (gpuRefusal) throw new VmResourceError("gpu_count", gpuRefusal);
    const netRefusal = this.opts.network.refusal({ publicIp: req.publicIp ?? null, networkFilters: req.networkFilters ?? [], lan: req.lan ?? null });
    if (netRefusal) throw new FieldError(netRefusal.field, netRefusal.message);
    const capacity = await this.opts.capacity();

    const reverter = new Reverter();
    try {
      const ports = await this.opts.ports.reserveNew(id, req);
      reverter.add("release ports", () => this.opts.ports.release(id));
      const spec = specFrom(req, ports, loginUser);
      // Fit check and insert with no await between: concurrent creations see each other.
      const all = this.opts.repo.list();
      quotaCheck(all);
      const refusal = checkFit(capacity, committed(all), demandOf(spec)) ?? checkRenterDisk(capacity, all, req.owner, demandOf(spec).diskBytes);
      if (refusal) throw new VmResourceError(refusal.field, refusal.message);
      const vm = this.opts.repo.insert({ id, taskId, nickname: req.nickname, owner: req.owner, spec, status: "creating" }, ports);
      // Waited for, a failure leaves nothing; answered at once, the record stays so the renter sees why.
      if (opts.wait) reverter.add("forget vm", () => this.opts.repo.delete(id));
      else reverter.add("forget the system disk's size", () => this.opts.repo.setSystemDiskBytes(id, null));
      this.opts.repo.log(id, `created: ${spec.cpu.cores * spec.cpu.threads} vCPU, ${spec.memoryMiB} MiB, image ${spec.imageName}`);
      this.opts.runtime.emit("change", { id, status: "creating", ready: false });
      killPoint("vm.create.after-insert");
      const op = this.opts.operations.begin({ id, taskId }, "create");
      const provision = this.opts.operations.track(op, this.locks.run(id, () => this.provision(vm, reverter)));
      if (opts.wait) await provision;
      else provision.catch(() => undefined);
      return { ...(this.opts.repo.get(id) ?? vm), operationId: op.id };
    } catch (e) {
      await reverter.revert();
      throw e;
    }
  }

  /** Makes the new VM's disks and boots it; on failure runs every undo registered for it so far. */
  private async provision(vm: VmRecord, reverter: Reverter): Promise<void> {
    const log = this.opts.log.child({ vm: vm.id });
    try {
      await this.opts.images.importShipped(vm.imageName);
      const image = this.opts.images.resolve(vm.imageName);
      const [vda, vdb] = await createVmVolumes(
        {
          dataDir: this.opts.dataDir,
          vmId: vm.id,
          baseImagePath: image.path,
          ...(vm.spec.dataDiskBytes && !vm.spec.dataFileName ? { dataDiskSizeBytes: vm.spec.dataDiskBytes } : {}),
          ...(vm.spec.dataFileName ? { dataFileName: vm.spec.dataFileName } : {}),
        },
        reverter,
      );
      this.opts.repo.setSystemDiskBytes(vm.id, vda!.virtualSizeBytes);
      if (vdb?.external) this.opts.repo.update(vm.id, { spec: { ...vm.spec, dataFileFormat: vdb.format } });
      killPoint("vm.create.after-disks");
      reverter.add("stop qemu", () => this.opts.runtime.powerOff(vm.id));
      await this.opts.runtime.boot(this.get(vm.id));
      killPoint("vm.create.before-running");
      reverter.success();
      this.opts.runtime.setStatus(vm.id, "running");
      this.opts.repo.log(vm.id, "running");
      log.info("vm created");
    } catch (e) {
      const message = errorText(e);
      log.warn({ err: e }, "vm creation failed");
      await reverter.revert();
      if (this.opts.repo.exists(vm.id)) {
        this.opts.repo.log(vm.id, `create error: ${message}`);
        this.opts.runtime.setStatus(vm.id, "create error", { lastError: message });
      }
      if (e instanceof VolumeError) throw new FieldError(e.code === "data_file_not_found" ? "data_file_name" : "disk", e.message);
      throw e;
    }
  }

  /** Runs a lifecycle action. Resolves when it has finished (shutdown: once the guest is off). */
  async act(id: string, action: VmAction, opts: { force?: boolean } = {}): Promise<VmRecord> {
    return this.locks.run(id, async () => {
      const vm = this.get(id);
      const alive = this.opts.runtime.isLive(id);
      const plan = planAction(action, vm.status, alive);
      if ("refused" in plan) throw new VmConflictError(plan.refused);
      if (action === "start" || (action === "restart" && !alive)) {
        this.admit();
        // Its disks exist already: only CPU and memory are asked for again.
        const refusal = checkFit(await this.opts.capacity(), committed(this.opts.repo.list(), id), { ...demandOf(vm.spec), diskBytes: 0 });
        if (refusal) throw new VmResourceError(refusal.field, refusal.message);
      }
      const pidBefore = this.opts.runtime.liveOf(id)?.pid;
      this.opts.runtime.setStatus(id, plan.during);
      this.opts.repo.log(id, `${action}${opts.force ? " (force)" : ""}`);
      killPoint(`vm.${action}.begun`);
      try {
        await this.perform(vm, action, alive, opts.force === true);
        killPoint(`vm.${action}.performed`);
      } catch (e) {
        const message = errorText(e);
        this.opts.log.warn({ vm: id, action, err: e }, "vm action failed");
        this.opts.repo.log(id, `${plan.failure}: ${message}`);
        if (this.opts.repo.exists(id)) this.opts.runtime.setStatus(id, plan.failure, { lastError: message });
        throw e;
      }
      if (plan.success === null) return vm;
      this.opts.runtime.setStatus(id, plan.success, { lastError: null });
      // The QEMU that listened on ports a modify kept is gone (shut off, or booted anew): free them.
      if (this.opts.runtime.liveOf(id)?.pid !== pidBefore) this.opts.ports.trimTo(id, this.get(id).spec);
      return this.get(id);
    });
  }

  private async perform(vm: VmRecord, action: VmAction, alive: boolean, force: boolean): Promise<void> {
    const { hypervisor, runtime } = this.opts;
    switch (action) {
      case "start":
        return runtime.boot(vm);
      case "poweroff":
        return runtime.powerOff(vm.id);
      case "shutdown":
        return this.gracefulStop(vm.id);
      case "reset":
        await hypervisor.reset(runtime.qmpOf(vm.id)!);
        this.opts.repo.update(vm.id, { ready: false });
        return;
      case "restart":
        if (alive && (force || !this.takesAcpi(vm))) {
          // A guest still booting ignores the power button: waiting for it would only stall the restart.
          if (!force) this.opts.repo.log(vm.id, "guest not up yet (no ACPI): reset instead");
          await hypervisor.reset(runtime.qmpOf(vm.id)!);
          this.opts.repo.update(vm.id, { ready: false });
          return;
        }
        if (alive) await this.gracefulStop(vm.id);
        killPoint("vm.restart.after-stop");
        return runtime.boot(this.get(vm.id));
      case "delete":
        await runtime.powerOff(vm.id);
        killPoint("vm.delete.after-qemu-quit");
        await removeVmVolumes(this.opts.dataDir, vm.id);
        await rm(runtime.runDir(vm.id), { recursive: true, force: true });
        killPoint("vm.delete.after-folder-removed");
        this.opts.ports.release(vm.id);
        this.opts.network.forget(vm.id);
        killPoint("vm.delete.after-ports-released");
        this.opts.repo.delete(vm.id);
        this.opts.repo.log(vm.id, "deleted");
        runtime.emit("change", { id: vm.id, status: "deleted", ready: false });
        return;
    }
  }

  /**
   * Whether the guest can take the ACPI power button: it has come up (its image's ready marker seen).
   * A guest whose image has no marker is given the benefit of the doubt (and the shutdown timeout).
   */
  private takesAcpi(vm: VmRecord): boolean {
    if (vm.ready) return true;
    try {
      return this.opts.images.resolve(vm.imageName).readyMarker === null;
    } catch {
      return true;
    }
  }

  /** ACPI power button, then a power cut if the guest has not gone within the timeout. */
  private async gracefulStop(id: string): Promise<void> {
    const entry = this.opts.runtime.expectExit(id);
    if (!entry) return;
    await this.opts.hypervisor.powerdown(entry.qmp);
    killPoint("vm.shutdown.after-acpi");
    if (await this.opts.runtime.waitExit(id, this.opts.shutdownTimeoutMs)) {
      await this.opts.runtime.powerOff(id); // forgets the exited process
      return;
    }
    this.opts.repo.log(id, "guest did not power off in time: powering off");
    await this.opts.runtime.powerOff(id);
  }

  private get(id: string): VmRecord {
    const vm = this.opts.repo.get(id);
    if (!vm) throw new VmNotFoundError(id);
    return vm;
  }

  /** Stops watching VMs; they keep running and the next agent adopts them. */
  async close(): Promise<void> {
    await this.opts.runtime.detachAll();
    await this.opts.network.close();
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
