import { dataVersion, type Db } from "./db.js";
import { VersionedMemo } from "./versioned-memo.js";

/**
 * One table whose reads may be kept in memory, and the only way to write it: `write` counts every
 * write of this connection, and `version()` moves after each one and after any commit by another
 * connection (`PRAGMA data_version`: another process, a `sqlite3` shell, the CLI writing offline).
 * Caches made by `cache()` are keyed on that version, so nothing read before a write is ever served
 * after it, and no writer has to remember to tell them.
 *
 * Every repository of the same table on the same connection shares one write count (an agent opens
 * several repositories over one connection), so a write through any of them moves every cache.
 */
export class VersionedTable {
  constructor(
    private readonly db: Db,
    readonly name: string,
  ) {}

  /**
   * Changes whenever the table may have changed. What was read after this returned v is current
   * while it returns v: take it before reading.
   */
  version(): string {
    return `${writeCounts.get(this.db)?.get(this.name) ?? 0}.${dataVersion(this.db)}`;
  }

  /** Runs a write of this table; the version moves after it (after a failed one too: a move is never wrong). */
  write<T>(write: () => T): T {
    try {
      return write();
    } finally {
      let counts = writeCounts.get(this.db);
      if (!counts) writeCounts.set(this.db, (counts = new Map()));
      counts.set(this.name, (counts.get(this.name) ?? 0) + 1);
    }
  }

  /**
   * A bounded cache of answers read from this table (least recently used key dropped first), emptied
   * whenever the table's version moves. Its values are shared by every caller: keep only values
   * nobody changes.
   */
  cache<V>(maxEntries: number): VersionedMemo<V> {
    return new VersionedMemo<V>(() => this.version(), maxEntries);
  }
}

const writeCounts = new WeakMap<Db, Map<string, number>>();
