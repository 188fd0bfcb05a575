import type { VmStats } from "../api/host-vm.js";
import type { Hypervisor } from "../hypervisor/driver.js";
import { deepFreeze } from "../lib/deep-freeze.js";
import type { Logger } from "../lib/logger.js";
import type { VersionedMemo } from "../store/versioned-memo.js";
import { VmNotFoundError } from "./errors.js";
import type { Operation, Operations } from "./operations.js";
import type { VmRecord, VmRepo, VmSummary } from "./repo.js";
import type { VmChange, VmRuntime } from "./runtime.js";
import { VmStatsReader } from "./stats.js";
import { SystemDiskSizes } from "./system-disk.js";

/**
 * How many renters' task lists are kept: a 1,000-task list is ~200 KiB. Reading one from SQLite
 * took ~2.4 ms, most of a list request's CPU (bench:api `tasks`: 5,713 req/s kept, 0.56 of bare
 * node:http; without it the list was CPU-bound on SQLite).
 */
export const SUMMARIES_KEPT = 256;

/**
 * How many VM records are kept for renters' `tasks/<id>` reads: each is a row read plus a JSON parse
 * of its spec (~15 µs) on a request whose whole CPU is ~0.13 ms, and keeping the same frozen record
 * lets the reply bytes be kept too (see task-view.ts).
 */
export const RECORDS_KEPT = 1024;

export interface VmQueriesOptions {
  repo: VmRepo;
  runtime: VmRuntime;
  hypervisor: Hypervisor;
  operations: Operations;
  log: Logger;
}

/**
 * Everything the faces read about VMs, apart from the lifecycle coordinator (`VmService`): records,
 * renters' lists, logs, live figures, operations, and changes as they happen. The reads renters
 * repeat on every request are kept in memory while the vms table is unchanged (`VersionedTable`), so
 * an answer is never older than the table; those values are frozen and shared by every caller.
 */
export class VmQueries {
  private readonly summaries: VersionedMemo<readonly VmSummary[]>;
  private readonly records: VersionedMemo<Readonly<VmRecord> | undefined>;
  private readonly statsReader: VmStatsReader;
  private readonly diskSizes: SystemDiskSizes;

  constructor(private readonly opts: VmQueriesOptions) {
    this.summaries = opts.repo.vms.cache(SUMMARIES_KEPT);
    this.records = opts.repo.vms.cache(RECORDS_KEPT);
    this.statsReader = new VmStatsReader(opts.hypervisor, opts.runtime);
    this.diskSizes = new SystemDiskSizes(opts.repo, (id) => opts.runtime.runDir(id), opts.log);
    opts.runtime.on("change", (c) => {
      if (c.status === "deleted") this.statsReader.forget(c.id);
    });
  }

  /** Every VM of this host, oldest first. */
  list(): VmRecord[] {
    return this.opts.repo.list();
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

  /**
   * What a task list shows of `owner`'s VMs, oldest first (no spec parsed). The same frozen array
   * while the vms table is unchanged, so a caller may key data derived from it (reply bytes) on it.
   */
  summariesFor(owner: string): readonly VmSummary[] {
    return this.summaries.get(owner, () => Object.freeze(this.opts.repo.summariesByOwner(owner).map((s) => Object.freeze(s))));
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

  /** A long operation by id (the last 1,000 are kept). */
  operation(id: string): Operation | undefined {
    return this.opts.operations.get(id);
  }

  /** Calls `listener` on every status or readiness change of any VM; returns the unsubscribe. */
  onChange(listener: (c: VmChange) => void): () => void {
    this.opts.runtime.on("change", listener);
    return () => this.opts.runtime.off("change", listener);
  }
}
