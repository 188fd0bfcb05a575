/**
 * The group's shared tables, replicated through etcd: etcd holds them, each master's SQLite is a
 * copy. The leading master writes its SQLite as a lone master does; triggers (TEMP, so only this
 * connection has them, and only in HA mode) copy each changed row into an outbox, which `flush()`
 * ships to etcd in one fenced transaction per batch: a heartbeat or a nonce costs no consensus write
 * of its own, and a reply waits for the batch its writes are in (`settled()`), so nothing a renter
 * saw acknowledged is lost with the leader. Every other master applies etcd's changes to its copy
 * as they come (a watch), so it is current when it takes the lead.
 */
import { Range, type Etcd3, type Watcher, type IKeyValue } from "etcd3";
import { prepared, type Db } from "../../store/db.js";
import { VersionedTable } from "../../store/versioned-table.js";

/** What one master holds of the group for all of them (members, ledger, sessions, nonces, LAN registry). */
export const SHARED_TABLES = ["group_members", "rentals", "renter_sessions", "used_nonces", "lan_networks", "lan_addresses"] as const;
export type SharedTable = (typeof SHARED_TABLES)[number];

/**
 * Tables whose writes no reply waits for: they go to etcd with the next batch (within the background
 * shipping period, or with the next write a reply does wait for). A renter call's nonce is the one
 * write most calls make; a call routed to a member has its nonce burnt on that member too, which
 * refuses a replay whatever the next leader remembers, so it need not cost a consensus round.
 */
const DEFERRED_TABLES: readonly SharedTable[] = ["used_nonces"];

/** etcd refuses a transaction of more operations than this (its default `--max-txn-ops`). */
const MAX_TXN_OPS = 128;

/**
 * Keys per read of a load. A group's tables outgrow one gRPC message (4 MiB by default: some 15,000
 * nonces), and a read of them all at once is refused, every time, so a master that must load them
 * (at start, and on being elected) never could: a load reads them in pages of this many keys.
 */
const LOAD_PAGE_KEYS = 1_000;

/**
 * What the client of the group's etcd takes in one message. A load is paged, but a watch that catches
 * up (after a reconnection, or from the revision a load read) gets up to 1,000 revisions of events in
 * one message from etcd (up to 127 rows each here), far more than gRPC's default 4 MiB.
 */
export const ETCD_GRPC_OPTIONS = { "grpc.max_receive_message_length": 256 * 1024 * 1024 };

interface TableShape {
  columns: string[];
  keyColumns: string[];
}

interface OutboxRow {
  seq: number;
  tbl: string;
  pk: string;
  row: string | null;
}

/** What proves this master still leads: a key etcd deletes when its lease ends. Writes are fenced on it. */
export type Fence = () => string | undefined;

export class ReplicatedTables {
  private readonly shapes = new Map<string, TableShape>();
  private readonly versions = new Map<string, VersionedTable>();
  private watcher: Watcher | undefined;
  /** The highest outbox seq shipped to etcd. */
  private shipped = 0;
  private flushing: Promise<void> | undefined;
  /** The highest outbox seq the ship under way carries (0 when none is). */
  private shipping = 0;
  private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly appliedListeners = new Set<(tables: ReadonlySet<string>) => void>();
  /** The etcd revision this copy is current to. */
  revision = 0;

  constructor(
    private readonly db: Db,
    private readonly etcd: Etcd3,
    /** Where the tables live in etcd, e.g. `/batu/<group>/tables/`. */
    private readonly prefix: string,
  ) {
    for (const table of SHARED_TABLES) {
      const info = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; pk: number }[];
      const keyColumns = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
      this.shapes.set(table, { columns: info.map((c) => c.name), keyColumns });
      this.versions.set(table, new VersionedTable(db, table));
    }
    this.installTriggers();
  }

  /** Calls `listener` with the tables a change from etcd touched (caches over them must forget). */
  onApplied(listener: (tables: ReadonlySet<string>) => void): void {
    this.appliedListeners.add(listener);
  }

  private installTriggers(): void {
    this.db.exec("CREATE TEMP TABLE IF NOT EXISTS ha_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, pk TEXT NOT NULL, row TEXT)");
    // Set while a change from etcd is applied: that change is etcd's already, not one to ship.
    this.db.exec("CREATE TEMP TABLE IF NOT EXISTS ha_applying (on_ INTEGER NOT NULL)");
    this.db.exec("DELETE FROM temp.ha_applying; INSERT INTO temp.ha_applying VALUES (0)");
    for (const [table, { columns, keyColumns }] of this.shapes) {
      const row = (r: string) => `json_object(${columns.map((c) => `'${c}', ${r}.${c}`).join(", ")})`;
      const key = (r: string) => `json_array(${keyColumns.map((c) => `${r}.${c}`).join(", ")})`;
      const keyChanged = keyColumns.map((c) => `OLD.${c} IS NOT NEW.${c}`).join(" OR ");
      const when = "WHEN (SELECT on_ FROM temp.ha_applying) = 0";
      const out = (pk: string, value: string) => `INSERT INTO temp.ha_outbox (tbl, pk, row) VALUES ('${table}', ${pk}, ${value});`;
      this.db.exec(`
        CREATE TEMP TRIGGER IF NOT EXISTS ha_${table}_insert AFTER INSERT ON main.${table} ${when}
        BEGIN ${out(key("NEW"), row("NEW"))} END;
        CREATE TEMP TRIGGER IF NOT EXISTS ha_${table}_update AFTER UPDATE ON main.${table} ${when}
        BEGIN
          INSERT INTO temp.ha_outbox (tbl, pk, row) SELECT '${table}', ${key("OLD")}, NULL WHERE ${keyChanged};
          ${out(key("NEW"), row("NEW"))}
        END;
        CREATE TEMP TRIGGER IF NOT EXISTS ha_${table}_delete AFTER DELETE ON main.${table} ${when}
        BEGIN ${out(key("OLD"), "NULL")} END;
      `);
    }
  }

  private etcdKey(table: string, pk: string): string {
    return `${this.prefix}${table}/${pk}`;
  }

  private lastSeq(): number {
    return (prepared(this.db, "SELECT COALESCE(MAX(seq), 0) AS s FROM temp.ha_outbox").get() as { s: number }).s;
  }

  /** Whether writes wait to be shipped. */
  pending(): boolean {
    return this.lastSeq() > this.shipped;
  }

  /** Forgets the writes not shipped (a follower's own: never the group's; its next load undoes them). */
  discardPending(): void {
    prepared(this.db, "DELETE FROM temp.ha_outbox").run();
    this.abandonWaiters();
  }

  /**
   * The replies waiting for writes just dropped from the outbox hear that they were not committed;
   * else they would wait for ever (no ship carries them now). Those the ship under way carries wait
   * for its outcome.
   */
  private abandonWaiters(): void {
    const error = new Error("this master no longer leads the group: the change was dropped, not shipped");
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.seq <= this.shipping ? still.push(w) : w.reject(error));
    this.waiters = still;
  }

  /** The last outbox seq a reply must wait for (not of DEFERRED_TABLES). */
  private lastAcknowledgedSeq(): number {
    const sql = `SELECT COALESCE(MAX(seq), 0) AS s FROM temp.ha_outbox WHERE tbl NOT IN (${DEFERRED_TABLES.map((t) => `'${t}'`).join(", ")})`;
    return (prepared(this.db, sql).get() as { s: number }).s;
  }

  /**
   * Resolves once every write made so far is in etcd (but those of DEFERRED_TABLES, which the next
   * batch takes); rejects when shipping it failed.
   */
  settled(fence: Fence): Promise<void> {
    const seq = this.lastAcknowledgedSeq();
    if (seq <= this.shipped) return Promise.resolve();
    const waiting = new Promise<void>((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
    // A failure reaches the waiters (this one among them), not the flush's own promise.
    this.flush(fence).catch(() => undefined);
    return waiting;
  }

  /**
   * Ships the outbox to etcd (one transaction per MAX_TXN_OPS keys, each only while `fence` still
   * names this master's leader key). One flush runs at a time; writes made meanwhile go in the next.
   */
  flush(fence: Fence): Promise<void> {
    // After the ship under way, whatever its outcome: writes made meanwhile have waiters of their own.
    if (this.flushing) return this.flushing.catch(() => undefined).then(() => (this.pending() ? this.flush(fence) : undefined));
    this.flushing = this.ship(fence).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async ship(fence: Fence): Promise<void> {
    const rows = prepared(this.db, "SELECT seq, tbl, pk, row FROM temp.ha_outbox WHERE seq > ? ORDER BY seq").all(this.shipped) as OutboxRow[];
    if (rows.length === 0) return;
    const upTo = rows[rows.length - 1]!.seq;
    this.shipping = upTo;
    // The last write of each key is what etcd must hold.
    const latest = new Map<string, string | null>();
    for (const r of rows) latest.set(this.etcdKey(r.tbl, r.pk), r.row);
    try {
      const leaderKey = fence();
      if (!leaderKey) throw new Error("this master does not lead the group: its writes are not the group's");
      const entries = [...latest];
      for (let i = 0; i < entries.length; i += MAX_TXN_OPS - 1) {
        const ops = entries.slice(i, i + MAX_TXN_OPS - 1).map(([key, value]) => (value === null ? this.etcd.delete().key(key) : this.etcd.put(key).value(value)));
        const result = await this.etcd.if(leaderKey, "Create", ">", 0).then(...ops).commit();
        if (!result.succeeded) throw new Error("this master lost the lead of the group while writing");
        this.revision = Math.max(this.revision, Number(result.header.revision));
      }
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      for (const w of this.waiters.splice(0)) w.reject(error);
      throw error;
    } finally {
      this.shipping = 0;
    }
    this.shipped = upTo;
    prepared(this.db, "DELETE FROM temp.ha_outbox WHERE seq <= ?").run(upTo);
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.seq <= upTo ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /**
   * The first master of a group on a new etcd brings the state it kept alone: when no master has
   * seeded the group yet (`marker` absent, claimed atomically), every row of this copy goes to etcd.
   * A later master seeds nothing (its copy is then replaced by `load`). Returns the rows put.
   */
  async seed(marker: string, by: string): Promise<number> {
    const claim = await this.etcd.if(marker, "Create", "==", 0).then(this.etcd.put(marker).value(by)).commit();
    if (!claim.succeeded) return 0;
    const puts: [string, string][] = [];
    for (const [table, { columns, keyColumns }] of this.shapes) {
      const rows = prepared(this.db, `SELECT ${columns.join(", ")} FROM main.${table}`).all() as Record<string, unknown>[];
      for (const row of rows) puts.push([this.etcdKey(table, JSON.stringify(keyColumns.map((c) => row[c]))), JSON.stringify(row)]);
    }
    for (let i = 0; i < puts.length; i += MAX_TXN_OPS) {
      await this.etcd.if(marker, "Create", ">", 0).then(...puts.slice(i, i + MAX_TXN_OPS).map(([k, v]) => this.etcd.put(k).value(v))).commit();
    }
    return puts.length;
  }

  /**
   * Makes this copy exactly etcd's: every shared table emptied and refilled from one read of the
   * prefix. Unshipped writes are dropped (they were never acknowledged). Returns the revision read.
   */
  async load(): Promise<number> {
    const { revision, kvs } = await this.readAll();
    this.applying(() => {
      for (const table of SHARED_TABLES) prepared(this.db, `DELETE FROM main.${table}`).run();
      for (const kv of kvs) this.applyPut(kv);
      prepared(this.db, "DELETE FROM temp.ha_outbox").run();
    });
    this.shipped = this.lastSeq();
    this.abandonWaiters();
    this.revision = revision;
    this.tell(new Set(SHARED_TABLES));
    return revision;
  }

  /** Every key under the prefix, in pages of LOAD_PAGE_KEYS all read at the first page's revision (one snapshot). */
  private async readAll(): Promise<{ revision: number; kvs: IKeyValue[] }> {
    const all = Range.prefix(this.prefix);
    const kvs: IKeyValue[] = [];
    let from = all.start;
    let revision: string | undefined;
    for (;;) {
      const read = this.etcd.getAll().inRange(new Range(from, all.end)).limit(LOAD_PAGE_KEYS);
      const page = await (revision === undefined ? read : read.revision(revision)).exec();
      revision ??= page.header.revision;
      kvs.push(...page.kvs);
      if (!page.more || page.kvs.length === 0) return { revision: Number(revision), kvs };
      // Keys come in byte order: the next page starts just after the last key of this one.
      from = Buffer.concat([page.kvs[page.kvs.length - 1]!.key, Buffer.from([0])]);
    }
  }

  /** Follows etcd from the revision loaded: others' writes are applied as they are committed. */
  async follow(onError: (e: Error) => void): Promise<void> {
    await this.unfollow();
    const watcher = await this.etcd.watch().prefix(this.prefix).startRevision(String(this.revision + 1)).create();
    this.watcher = watcher;
    watcher.on("data", (res) => {
      const touched = new Set<string>();
      try {
        this.applying(() => {
          for (const event of res.events) {
            const table = this.tableOf(event.kv.key.toString());
            if (table) touched.add(table);
            if (event.type === "Delete") this.applyDelete(event.kv);
            else this.applyPut(event.kv);
          }
        });
      } catch (e) {
        // A change this copy cannot take (a row its schema refuses): it is reloaded whole instead.
        void this.unfollow();
        onError(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      this.revision = Math.max(this.revision, Number(res.header.revision));
      if (touched.size) this.tell(touched);
    });
    watcher.on("error", onError);
  }

  async unfollow(): Promise<void> {
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.cancel();
  }

  private tell(tables: ReadonlySet<string>): void {
    for (const listener of this.appliedListeners) listener(tables);
  }

  private applying(apply: () => void): void {
    const flag = prepared(this.db, "UPDATE temp.ha_applying SET on_ = ?");
    this.db.transaction(() => {
      flag.run(1);
      try {
        apply();
      } finally {
        flag.run(0);
      }
    })();
  }

  private tableOf(key: string): SharedTable | undefined {
    const rest = key.slice(this.prefix.length);
    const table = rest.slice(0, rest.indexOf("/"));
    return (SHARED_TABLES as readonly string[]).includes(table) ? (table as SharedTable) : undefined;
  }

  private applyPut(kv: IKeyValue): void {
    const table = this.tableOf(kv.key.toString());
    if (!table) return;
    const { columns } = this.shapes.get(table)!;
    const row = JSON.parse(kv.value.toString()) as Record<string, unknown>;
    this.versions.get(table)!.write(() =>
      prepared(this.db, `INSERT OR REPLACE INTO main.${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`).run(...columns.map((c) => row[c] ?? null)),
    );
  }

  private applyDelete(kv: IKeyValue): void {
    const key = kv.key.toString();
    const table = this.tableOf(key);
    if (!table) return;
    const { keyColumns } = this.shapes.get(table)!;
    const values = JSON.parse(key.slice(this.prefix.length + table.length + 1)) as unknown[];
    this.versions.get(table)!.write(() =>
      prepared(this.db, `DELETE FROM main.${table} WHERE ${keyColumns.map((c) => `${c} = ?`).join(" AND ")}`).run(...values),
    );
  }

  async close(): Promise<void> {
    await this.unfollow();
    for (const w of this.waiters.splice(0)) w.reject(new Error("the agent is stopping"));
  }
}
