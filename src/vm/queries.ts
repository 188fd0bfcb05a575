import type { VmLimits, VmStats } from "../api/host-vm.js";
import type { Hypervisor } from "../hypervisor/driver.js";
import type { Logger } from "../lib/logger.js";
import type { VersionedMemo } from "../store/versioned-memo.js";
import { VmNotFoundError } from "./errors.js";
import type { Operation, Operations } from "./operations.js";
import type { GuestNetwork } from "./guest-network.js";
import type { VmRecord, VmRepo, VmSummary } from "./repo.js";
import type { VmChange, VmRuntime } from "./runtime.js";
import { VmStatsReader } from "./stats.js";
import { SystemDiskSizes } from "./system-disk.js";

export interface VmQueriesOptions {
  repo: VmRepo;
  network: GuestNetwork;
  runtime: VmRuntime;
  hypervisor: Hypervisor;
  operations: Operations;
  log: Logger;
}

/**
 * Everything the faces read about VMs, apart from the lifecycle coordinator (`VmService`): records,
 * renters' lists, logs, live figures, operations, and changes as they happen. Reads go to the store;
 * what a face derives from them and serves often (reply bytes) it keeps in a `cache()`, emptied
 * whenever the vms table changes, so an answer is never older than the table.
 */
export class VmQueries {
  private readonly statsReader: VmStatsReader;
  private readonly diskSizes: SystemDiskSizes;

  constructor(private readonly opts: VmQueriesOptions) {
    this.statsReader = new VmStatsReader(opts.hypervisor, opts.runtime);
    this.diskSizes = new SystemDiskSizes(opts.repo, (id) => opts.runtime.runDir(id), opts.log);
    opts.runtime.on("change", (c) => {
      if (c.status === "deleted") this.statsReader.forget(c.id);
    });
  }

  /** The guest's addresses on the host's network while it runs (DBC's `local_address`). */
  localAddresses(vm: Pick<VmRecord, "id" | "status">): string[] {
    return vm.status === "running" ? this.opts.network.addressesOf(vm.id) : [];
  }

  /** Every VM of this host, oldest first. */
  list(): VmRecord[] {
    return this.opts.repo.list();
  }

  /**
   * A cache for values derived from the vms table (a reply's bytes), emptied whenever the table
   * changes. Its values are shared by every caller: keep only values nobody changes.
   */
  cache<V>(maxEntries: number): VersionedMemo<V> {
    return this.opts.repo.vms.cache(maxEntries);
  }

  /** Whether VM `id`'s QEMU process runs now. */
  isLive(id: string): boolean {
    return this.opts.runtime.isLive(id);
  }

  /** VM `id`, or undefined. */
  find(id: string): VmRecord | undefined {
    return this.opts.repo.get(id);
  }

  get(id: string): VmRecord {
    const vm = this.opts.repo.get(id);
    if (!vm) throw new VmNotFoundError(id);
    return vm;
  }

  /** The VMs of `owner`, oldest first. */
  listFor(owner: string): VmRecord[] {
    return this.opts.repo.listByOwner(owner);
  }

  /** What a task list shows of `owner`'s VMs, oldest first (read without parsing any spec). */
  summariesFor(owner: string): VmSummary[] {
    return this.opts.repo.summariesByOwner(owner);
  }

  /** Whether VM `id` exists and is `owner`'s. */
  owns(owner: string, id: string): boolean {
    return this.opts.repo.ownedBy(id, owner);
  }

  /** `owner`'s VM by the task id it knows it by; another owner's VM is "not found", never a hint that it exists. */
  getFor(owner: string, taskId: string): VmRecord {
    const vm = this.findFor(owner, taskId);
    if (!vm) throw new VmNotFoundError(taskId);
    return vm;
  }

  /** `owner`'s VM by its task id, or undefined (none of `owner`'s, whatever other owners have). */
  findFor(owner: string, taskId: string): VmRecord | undefined {
    return this.opts.repo.getByTask(owner, taskId);
  }

  /** The VM's lifecycle log (oldest first), `count` lines from the head or the tail. */
  logLines(id: string, from: "head" | "tail", count: number): string[] {
    return this.opts.repo.logLines(id, { from, count });
  }

  /** The system disk's size as the guest sees it (its virtual size); null while creating or without a disk. */
  systemDiskBytes(vm: Readonly<VmRecord>): Promise<number | null> {
    return this.diskSizes.of(vm);
  }

  /** Live figures of VM `id` (CPU usage is measured between two calls). */
  stats(id: string): Promise<VmStats> {
    return this.statsReader.read(this.get(id));
  }

  /**
   * VM `id`'s caps on disk I/O and network: what applies to it (its grant's, else the operator's
   * defaults) and, while it runs, what QEMU and the kernel enforce now.
   */
  async limits(id: string): Promise<VmLimits> {
    const vm = this.get(id);
    const wanted = this.opts.runtime.ioLimitsOf(vm);
    const qmp = this.opts.runtime.qmpOf(id);
    const disks = qmp ? await this.opts.hypervisor.diskThrottles(qmp) : [];
    return {
      vm_id: id,
      disk_iops: wanted.diskIops,
      disk_mbps: wanted.diskMBps,
      net_mbit: wanted.netMbit,
      enforced: {
        disks: disks.map(({ id: disk, throttle }) => ({
          disk,
          iops: throttle?.iops || null,
          mbps: throttle?.bytesPerSec ? throttle.bytesPerSec / 1_000_000 : null,
          group: throttle?.group ?? null,
        })),
        taps: qmp ? await this.opts.network.tapCaps(id) : [],
      },
    };
  }

  /** Live figures of VM `vm` for a metrics scrape: the usage % baseline of `stats` is left as it is. */
  counters(vm: VmRecord): Promise<VmStats> {
    return this.statsReader.read(vm, { measure: false });
  }

  /** A long operation by id (the last 1,000 are kept). */
  operation(id: string): Operation | undefined {
    return this.opts.operations.get(id);
  }

  /** Calls `listener` on each progress or end of a long operation (see Operations); returns the unsubscribe. */
  onOperation(listener: (op: Readonly<Operation>) => void): () => void {
    return this.opts.operations.onUpdate(listener);
  }

  /** Calls `listener` on every status or readiness change of any VM; returns the unsubscribe. */
  onChange(listener: (c: VmChange) => void): () => void {
    this.opts.runtime.on("change", listener);
    return () => this.opts.runtime.off("change", listener);
  }
}
