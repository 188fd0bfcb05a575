import { VersionedMemo } from "../store/versioned-memo.js";
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
  private readonly memo: VersionedMemo<readonly VmSummary[]>;

  constructor(
    private readonly repo: Pick<VmRepo, "version" | "summariesByOwner">,
    readonly maxOwners: number = SUMMARY_CACHE_MAX_OWNERS,
  ) {
    this.memo = new VersionedMemo(() => repo.version(), maxOwners);
  }

  get size(): number {
    return this.memo.size;
  }

  /** `owner`'s VMs as the list shows them, oldest first: from memory while vms is unchanged. */
  summariesFor(owner: string): readonly VmSummary[] {
    return this.memo.get(owner, () => Object.freeze(this.repo.summariesByOwner(owner).map((s) => Object.freeze(s))));
  }
}
