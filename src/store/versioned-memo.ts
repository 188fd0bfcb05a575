/**
 * Answers read from the store, kept in memory while the store's version for them is unchanged
 * (`VersionedTable.version`): when it moves, everything is dropped, so an answer is never older than the table.
 * Absent answers (undefined) are kept too. Bounded: the least recently used key goes first. What is
 * kept is shared by every caller: keep only values nobody changes (frozen).
 */
export class VersionedMemo<V> {
  // A Map iterates in insertion order: re-inserting on a hit keeps the least recently used entry first.
  private readonly entries = new Map<string, V>();
  private version: string | undefined;

  constructor(
    private readonly currentVersion: () => string,
    readonly maxEntries: number,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new Error(`maxEntries must be a positive integer, got ${maxEntries}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** `read()`'s answer for `key`: kept from an earlier call while the version is the same. */
  get(key: string, read: () => V): V {
    // The version before the read: a commit racing the read can only make the entry look older than it is.
    const version = this.currentVersion();
    if (version !== this.version) {
      this.entries.clear();
      this.version = version;
    }
    if (this.entries.has(key)) {
      const kept = this.entries.get(key) as V;
      this.entries.delete(key);
      this.entries.set(key, kept);
      return kept;
    }
    const value = read();
    this.entries.set(key, value);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return value;
  }
}
