import type { VmRepo, VmSummary } from "./repo.js";

/** Default bound of a SummaryCache: the lists of this many renters; a 1,000-task list is ~200 KiB. */
export const SUMMARY_CACHE_MAX_OWNERS = 256;

/**
 * Renters' task lists (`VmRepo.summariesByOwner`) kept while the vms table has not changed: reading
 * a 1,000-task list from SQLite took ~2.4 ms, most of a list request's CPU. Every entry is of the
 * repo's current `version()`: when it moves (any write to vms, here or by another connection) the
 * whole cache is dropped, so a list is never older than the table. A hit returns the very same
 * frozen array, so a caller may key its own derived data (the serialized reply) on its identity.
 * Bounded: the least recently used renter goes first.
 */
export class SummaryCache {
  // A Map iterates in insertion order: re-inserting on a hit keeps the least recently used entry first.
  private readonly entries = new Map<string, readonly VmSummary[]>();
  private version: string | undefined;

  constructor(
    private readonly repo: Pick<VmRepo, "version" | "summariesByOwner">,
    readonly maxOwners: number = SUMMARY_CACHE_MAX_OWNERS,
  ) {
    if (!Number.isInteger(maxOwners) || maxOwners < 1) throw new Error(`maxOwners must be a positive integer, got ${maxOwners}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** `owner`'s VMs as the list shows them, oldest first: from memory while vms is unchanged. */
  summariesFor(owner: string): readonly VmSummary[] {
    // The version before the read: a change racing the read can only make the entry look older than it is.
    const version = this.repo.version();
    if (version !== this.version) {
      this.entries.clear();
      this.version = version;
    }
    const hit = this.entries.get(owner);
    if (hit) {
      this.entries.delete(owner);
      this.entries.set(owner, hit);
      return hit;
    }
    const summaries = Object.freeze(this.repo.summariesByOwner(owner).map((s) => Object.freeze(s)));
    this.entries.set(owner, summaries);
    if (this.entries.size > this.maxOwners) this.entries.delete(this.entries.keys().next().value!);
    return summaries;
  }
}
