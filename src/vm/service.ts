import { rm } from "node:fs/promises";
import type { Hypervisor } from "../hypervisor/driver.js";
import type { AcceleratorChoice } from "../hypervisor/accel.js";
import { PortAllocator, PortTakenError } from "../network/port-allocator.js";
import { createVmVolumes, removeVmVolumes, VolumeError, checkVmId } from "../storage/volumes.js";
import { Reverter } from "../lib/reverter.js";
import type { Logger } from "../lib/logger.js";
import { ImageCatalog, ImageError } from "./images.js";
import { FieldError, newVmId, type VmCreateRequest } from "./create-request.js";
import { KeyedMutex } from "./keyed-mutex.js";
import type { VmPortRow, VmRecord, VmRepo, VmSummary } from "./repo.js";
import { checkFit, type Demand, type HostCapacity } from "./resources.js";
import { VmRuntime, type VmChange } from "./runtime.js";
import { vcpus, type PortKind, type VmSpec } from "./spec.js";
import { planAction, type VmAction } from "./state.js";
import { reservePorts, specFrom } from "./allocate.js";
import { VmConflictError, VmNotFoundError, VmResourceError } from "./errors.js";
import { reconcile, type ReconcileReport } from "./reconcile.js";
import { VmStatsReader } from "./stats.js";
import { SystemDiskSizes } from "./system-disk.js";
import { SummaryCache } from "./summary-cache.js";
import { VersionedMemo } from "../store/versioned-memo.js";
import { deepFreeze } from "../lib/deep-freeze.js";
import { Operations, type Operation } from "./operations.js";
import { TRANSITIONAL } from "./state.js";
import { applyForwardsLive, applyModify, forwardsOf, type VmModify } from "./modify.js";
import type { VmStats } from "../api/host-vm.js";

export type PortRangeKind = "forward" | "vnc";

/** How many VM records `getFor` keeps in memory. */
const RECORDS_KEPT = 1024;

export { VmNotFoundError, VmConflictError, VmResourceError } from "./errors.js";

export interface VmServiceOptions {
  dataDir: string;
  hypervisor: Hypervisor;
  repo: VmRepo;
  images: ImageCatalog;
  ports: PortAllocator<PortRangeKind>;
  accel: AcceleratorChoice;
  /** The host's capacity now (free disk changes). */
  capacity: () => Promise<HostCapacity>;
  /** Address host forwards and VNC listen on. */
  forwardHost: string;
  /** How long a graceful shutdown waits for the guest before powering off. */
  shutdownTimeoutMs: number;
  log: Logger;
}

/**
 * The VM service: one store, one state machine, for both faces (host API and DBC API).
 * Operations on one VM run one at a time; operations on different VMs run concurrently.
 */
export class VmService {
  readonly runtime: VmRuntime;
  private readonly locks = new KeyedMutex();
  private readonly statsReader: VmStatsReader;
  readonly operations = new Operations();
  private readonly diskSizes: SystemDiskSizes;
  private readonly summaries: SummaryCache;
  // A renter's VM as its task routes read it (every tasks/<id> call), kept while vms is unchanged.
  private readonly records: VersionedMemo<VmRecord | undefined>;

  constructor(private readonly opts: VmServiceOptions) {
    this.summaries = new SummaryCache(opts.repo);
    this.records = new VersionedMemo(() => opts.repo.version(), RECORDS_KEPT);
    this.runtime = new VmRuntime(opts);
    this.statsReader = new VmStatsReader(opts.hypervisor, this.runtime);
    this.diskSizes = new SystemDiskSizes(opts.repo, (id) => this.runtime.runDir(id), opts.log);
  }

  /** Adopts running VMs and cleans up after the last agent; call once at start, before serving. */
  reconcile(): Promise<ReconcileReport> {
    return reconcile({ ...this.opts, runtime: this.runtime });
  }

  stats(id: string): Promise<VmStats> {
    return this.statsReader.read(this.get(id));
  }

  onChange(listener: (c: VmChange) => void): () => void {
    this.runtime.on("change", listener);
    return () => this.runtime.off("change", listener);
  }

  list(): VmRecord[] {
    return this.opts.repo.list();
  }

  get(id: string): VmRecord {
    const vm = this.opts.repo.get(id);
    if (!vm) throw new VmNotFoundError(id);
    return vm;
  }

  /** The VMs `owner` may see (a renter sees only its own; the operator, `null` owner filter, sees all). */
  listFor(owner: string): VmRecord[] {
    return this.opts.repo.listByOwner(owner);
  }

  /**
   * What a task list shows of `owner`'s VMs, oldest first (no spec parsed). Kept in memory while the
   * vms table is unchanged; the same frozen array is returned until then (see SummaryCache).
   */
  summariesFor(owner: string): readonly VmSummary[] {
    return this.summaries.summariesFor(owner);
  }

  /** Whether VM `id` exists and is `owner`'s. */
  owns(owner: string, id: string): boolean {
    return this.opts.repo.ownedBy(id, owner);
  }

  /**
   * A VM of `owner`; another owner's VM is "not found", never a hint that it exists. Frozen, and the
   * same object while the vms table is unchanged (a caller may key data derived from it on it).
   */
  getFor(owner: string, id: string): Readonly<VmRecord> {
    const vm = this.records.get(id, () => deepFreeze(this.opts.repo.get(id)));
    if (!vm || vm.owner !== owner) throw new VmNotFoundError(id);
    return vm;
  }

  /**
   * Starts an action and answers at once (DBC's asynchronous style): refused now if the VM is busy
   * or its state forbids it; otherwise the returned operation tracks it to the end.
   */
  begin(id: string, action: VmAction, opts: { force?: boolean } = {}): Operation {
    const vm = this.get(id);
    if (this.locks.busy(id) || TRANSITIONAL.has(vm.status)) throw new VmConflictError(`vm is ${vm.status}`);
    const plan = planAction(action, vm.status, this.runtime.isLive(id));
    if ("refused" in plan) throw new VmConflictError(plan.refused);
    const op = this.operations.begin(id, action);
    this.operations.track(op, this.act(id, action, opts)).catch(() => undefined);
    return op;
  }

  /**
   * Changes ports at once (live on a running VM) and CPU, memory or GPU count while it is shut off.
   * Answers whether part of the change waits for the next boot (a new VNC port).
   */
  async modify(id: string, change: VmModify): Promise<{ nextBoot: boolean }> {
    return this.locks.run(id, async () => {
      const vm = this.get(id);
      const alive = this.runtime.isLive(id);
      if (TRANSITIONAL.has(vm.status)) throw new VmConflictError(`vm is ${vm.status}`);
      const sized = change.cores !== undefined || change.memoryMiB !== undefined || change.gpuCount !== undefined;
      if (sized && alive) throw new VmConflictError("cpu, memory and gpu count can be changed only while the task is shut off");
      if ((change.gpuCount ?? 0) > 0) throw new VmResourceError("new_gpu_count", "allocate gpu failed");
      if (change.sshPort !== undefined && change.sshPort === (change.rdpPort ?? vm.spec.ports.rdp)) {
        throw new FieldError("new_ssh_port", "new_ssh_port and new_rdp_port are the same!");
      }
      const { next, nextBoot } = applyModify(vm.spec, change);
      const wanted = [
        ...(next.ports.ssh !== null ? [{ port: next.ports.ssh, label: "ssh" as const }] : []),
        ...(next.ports.rdp !== null ? [{ port: next.ports.rdp, label: "rdp" as const }] : []),
        { port: next.ports.vnc, label: "vnc" as const },
        ...next.ports.custom.map((f) => ({ port: f.hostPort, proto: f.proto, label: "custom" as const })),
      ];
      try {
        await this.opts.ports.reserve(id, wanted);
      } catch (e) {
        if (e instanceof PortTakenError) {
          const field = change.sshPort === e.port ? "new_ssh_port" : change.rdpPort === e.port ? "new_rdp_port" : change.vncPort === e.port ? "new_vnc_port" : "new_custom_port";
          throw new VmConflictError(`${field} ${e.port} has been used!`);
        }
        throw e;
      }
      if (alive) await applyForwardsLive(this.runtime.qmpOf(id)!, this.opts.forwardHost, forwardsOf(vm.spec), forwardsOf(next));
      // Ports the VM no longer uses go back to the pool (the running VNC port stays until the next boot).
      const keep = new Set(wanted.map((w) => `${"proto" in w ? w.proto : "tcp"}/${w.port}`));
      if (nextBoot && alive) keep.add(`tcp/${vm.spec.ports.vnc}`);
      for (const r of this.opts.ports.owned(id)) if (!keep.has(`${r.proto}/${r.port}`)) this.opts.ports.releasePort(id, r.port, r.proto);
      this.opts.repo.update(id, { spec: next });
      this.opts.repo.replacePorts(id, this.opts.ports.owned(id).map((r) => ({ port: r.port, proto: r.proto, kind: (r.label as PortKind | undefined) ?? "custom" })));
      this.opts.repo.log(id, `modified: ${JSON.stringify(change)}`);
      return { nextBoot: nextBoot && alive };
    });
  }

  /** The system disk's size as the guest sees it (its virtual size); null while creating or without a disk. */
  systemDiskBytes(vm: VmRecord): Promise<number | null> {
    return this.diskSizes.of(vm);
  }

  /** The VM's lifecycle log (oldest first), `count` lines from the head or the tail. */
  logLines(id: string, from: "head" | "tail", count: number): string[] {
    return this.opts.repo.logLines(id, { from, count });
  }

  ports(id: string): VmPortRow[] {
    return this.opts.repo.ports(id);
  }

  /**
   * Creates a VM: checks it fits, reserves its ports, records it as `creating`, then makes its disks
   * and boots it. With `wait`, resolves once it runs (and on failure leaves nothing behind); without,
   * resolves at once and a failure shows as `create error` (resources released).
   */
  async create(req: VmCreateRequest, opts: { wait: boolean }): Promise<VmRecord & { operationId: string }> {
    const id = req.id ?? newVmId();
    try {
      checkVmId(id);
    } catch {
      throw new FieldError("task_id", "task id requires a combination of letters or numbers");
    }
    if (this.opts.repo.exists(id)) throw new FieldError("task_id", "task id already existed");
    try {
      this.opts.images.resolve(req.imageName);
    } catch (e) {
      if (e instanceof ImageError) throw new FieldError("image_name", e.message);
      throw e;
    }
    if (req.gpuCount > 0) throw new VmResourceError("gpu_count", "allocate gpu failed: this host has no GPU free for passthrough");
    const capacity = await this.opts.capacity();

    const reverter = new Reverter();
    try {
      const ports = await reservePorts(this.opts.ports, id, req);
      reverter.add("release ports", () => this.opts.ports.release(id));
      const spec = specFrom(req, ports, this.opts.images.resolve(req.imageName).loginUser);
      // Fit check and insert with no await between: concurrent creations see each other.
      const refusal = checkFit(capacity, this.committed(), demandOf(spec));
      if (refusal) throw new VmResourceError(refusal.field, refusal.message);
      const vm = this.opts.repo.insert(
        { id, nickname: req.nickname, owner: req.owner, spec, status: "creating" },
        ports.map((p) => ({ port: p.port, proto: p.proto, kind: p.kind })),
      );
      reverter.add("forget vm", () => this.opts.repo.delete(id));
      this.opts.repo.log(id, `created: ${spec.cpu.cores * spec.cpu.threads} vCPU, ${spec.memoryMiB} MiB, image ${spec.imageName}`);
      this.runtime.emit("change", { id, status: "creating", ready: false });
      const op = this.operations.begin(id, "create");
      const provision = this.operations.track(op, this.locks.run(id, () => this.provision(vm, reverter, opts.wait)));
      if (opts.wait) await provision;
      else provision.catch(() => undefined);
      return { ...(this.opts.repo.get(id) ?? vm), operationId: op.id };
    } catch (e) {
      await reverter.revert();
      throw e;
    }
  }

  private async provision(vm: VmRecord, reverter: Reverter, forgetOnFailure: boolean): Promise<void> {
    const log = this.opts.log.child({ vm: vm.id });
    try {
      await this.opts.images.importShipped(vm.imageName);
      const image = this.opts.images.resolve(vm.imageName);
      const [vda] = await createVmVolumes(
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
      reverter.add("stop qemu", () => this.runtime.powerOff(vm.id));
      await this.runtime.boot(vm);
      reverter.success();
      this.runtime.setStatus(vm.id, "running");
      this.opts.repo.log(vm.id, "running");
      log.info("vm created");
    } catch (e) {
      const message = errorText(e);
      log.warn({ err: e }, "vm creation failed");
      if (forgetOnFailure) {
        await reverter.revert();
      } else {
        // Keep the record so the renter sees why; release everything else.
        reverter.success();
        await this.runtime.powerOff(vm.id).catch(() => undefined);
        await removeVmVolumes(this.opts.dataDir, vm.id).catch(() => undefined);
        this.opts.repo.setSystemDiskBytes(vm.id, null);
        this.opts.ports.release(vm.id);
        this.opts.repo.replacePorts(vm.id, []);
        this.opts.repo.log(vm.id, `create error: ${message}`);
        this.runtime.setStatus(vm.id, "create error", { lastError: message });
      }
      if (e instanceof VolumeError) throw new FieldError(e.code === "data_file_not_found" ? "data_file_name" : "disk", e.message);
      throw e;
    }
  }

  /** Runs a lifecycle action. Resolves when it has finished (shutdown: once the guest is off). */
  async act(id: string, action: VmAction, opts: { force?: boolean } = {}): Promise<VmRecord> {
    return this.locks.run(id, async () => {
      const vm = this.get(id);
      const alive = this.runtime.isLive(id);
      const plan = planAction(action, vm.status, alive);
      if ("refused" in plan) throw new VmConflictError(plan.refused);
      if (action === "start" || (action === "restart" && !alive)) {
        const refusal = checkFit(await this.opts.capacity(), this.committed(id), demandOf(vm.spec));
        if (refusal) throw new VmResourceError(refusal.field, refusal.message);
      }
      this.runtime.setStatus(id, plan.during);
      this.opts.repo.log(id, `${action}${opts.force ? " (force)" : ""}`);
      try {
        await this.perform(vm, action, alive, opts.force === true);
      } catch (e) {
        const message = errorText(e);
        this.opts.log.warn({ vm: id, action, err: e }, "vm action failed");
        this.opts.repo.log(id, `${plan.failure}: ${message}`);
        if (this.opts.repo.exists(id)) this.runtime.setStatus(id, plan.failure, { lastError: message });
        throw e;
      }
      if (plan.success === null) return vm;
      this.runtime.setStatus(id, plan.success, { lastError: null });
      return this.get(id);
    });
  }

  private async perform(vm: VmRecord, action: VmAction, alive: boolean, force: boolean): Promise<void> {
    const { hypervisor } = this.opts;
    switch (action) {
      case "start":
        return this.runtime.boot(vm);
      case "poweroff":
        return this.runtime.powerOff(vm.id);
      case "shutdown":
        return this.gracefulStop(vm.id);
      case "reset":
        await hypervisor.reset(this.runtime.qmpOf(vm.id)!);
        this.opts.repo.update(vm.id, { ready: false });
        return;
      case "restart":
        if (alive && force) {
          await hypervisor.reset(this.runtime.qmpOf(vm.id)!);
          this.opts.repo.update(vm.id, { ready: false });
          return;
        }
        if (alive) await this.gracefulStop(vm.id);
        return this.runtime.boot(this.get(vm.id));
      case "delete":
        await this.runtime.powerOff(vm.id);
        await removeVmVolumes(this.opts.dataDir, vm.id);
        await rm(this.runtime.runDir(vm.id), { recursive: true, force: true });
        this.opts.ports.release(vm.id);
        this.opts.repo.delete(vm.id);
        this.statsReader.forget(vm.id);
        this.opts.repo.log(vm.id, "deleted");
        this.runtime.emit("change", { id: vm.id, status: "deleted", ready: false });
        return;
    }
  }

  /** ACPI power button, then a power cut if the guest has not gone within the timeout. */
  private async gracefulStop(id: string): Promise<void> {
    const entry = this.runtime.expectExit(id);
    if (!entry) return;
    await this.opts.hypervisor.powerdown(entry.qmp);
    if (await this.runtime.waitExit(id, this.opts.shutdownTimeoutMs)) {
      await this.runtime.powerOff(id); // forgets the exited process
      return;
    }
    this.opts.repo.log(id, "guest did not power off in time: powering off");
    await this.runtime.powerOff(id);
  }

  /** What running (or starting) VMs hold, except `exceptId`. */
  private committed(exceptId?: string): Demand {
    let total: Demand = { vcpus: 0, memoryBytes: 0, diskBytes: 0 };
    for (const vm of this.opts.repo.list()) {
      if (vm.id === exceptId || vm.status === "closed" || vm.status.endsWith(" error")) continue;
      const d = demandOf(vm.spec);
      total = { vcpus: total.vcpus + d.vcpus, memoryBytes: total.memoryBytes + d.memoryBytes, diskBytes: 0 };
    }
    return total;
  }

  /** Stops watching VMs; they keep running and the next agent adopts them. */
  async close(): Promise<void> {
    await this.runtime.detachAll();
  }
}

function demandOf(spec: VmSpec): Demand {
  return { vcpus: vcpus(spec), memoryBytes: spec.memoryMiB * 2 ** 20, diskBytes: spec.dataDiskBytes ?? 0 };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
