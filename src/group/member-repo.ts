import { prepared, type Db } from "../store/db.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";

export interface MemberRecord {
  address: string;
  nodeId: string | null;
  nickname: string;
  joinedAt: string;
  lastSeen: string;
  /** The last heartbeat's capacity, as the member sent it (JSON); null before the first heartbeat. */
  capacity: unknown;
  vmCount: number | null;
  /** Where the master calls it over TLS, and the certificate pinned for it; null until it told. */
  tls: TlsEndpoint | null;
}

interface Row {
  address: string;
  node_id: string | null;
  nickname: string;
  joined_at: string;
  last_seen: string;
  capacity_json: string | null;
  vm_count: number | null;
  tls_port: number | null;
  cert_sha256: string | null;
}

const toRecord = (r: Row): MemberRecord => ({
  address: r.address,
  nodeId: r.node_id,
  nickname: r.nickname,
  joinedAt: r.joined_at,
  lastSeen: r.last_seen,
  capacity: r.capacity_json === null ? null : (JSON.parse(r.capacity_json) as unknown),
  vmCount: r.vm_count,
  tls: r.tls_port !== null && r.cert_sha256 !== null ? { port: r.tls_port, sha256: r.cert_sha256 } : null,
});

/** What a heartbeat that changed nothing else brings: kept in memory, written out in batches. */
interface Beat {
  lastSeen: string;
  capacityJson: string;
  vmCount: number;
}

/** How often heartbeats kept in memory are written out: an agent SIGKILL loses at most this much of `last_seen`. */
export const MEMBER_FLUSH_MS = 5_000;

/**
 * The master's record of its group's members (table `group_members`). A member's state is never
 * stored: it is computed from `last_seen` on read (liveness.ts); the table's `state` column, from the
 * first schema, is left to its default and no longer written.
 *
 * A heartbeat that only moves `last_seen` and the capacity costs no disk write: it is kept in memory
 * (every read sees it) and written out with the others every MEMBER_FLUSH_MS and at close. A change
 * of address, name or certificate is written at once.
 */
export class GroupMemberRepo {
  private readonly beats = new Map<string, Beat>();
  private flusher: NodeJS.Timeout | undefined;
  /**
   * The table's rows, read once and kept until this repo writes it (every write to group_members
   * goes through here): a heartbeat's lookups by node id and address cost no query.
   */
  private rows: { all: Row[]; byNode: Map<string, Row>; byAddress: Map<string, Row> } | null = null;
  /**
   * Each row's record, with the heartbeat kept in memory it was made with: while neither changes, the
   * same (frozen) record is handed out, so a list costs no JSON parse and readers can cache by identity.
   */
  private readonly records = new WeakMap<Row, { beat: Beat | undefined; record: MemberRecord }>();

  private table(): NonNullable<GroupMemberRepo["rows"]> {
    if (!this.rows) {
      const all = prepared(this.db, "SELECT * FROM group_members ORDER BY id").all() as Row[];
      this.rows = { all, byNode: new Map(all.flatMap((r) => (r.node_id === null ? [] : [[r.node_id, r] as const]))), byAddress: new Map(all.map((r) => [r.address, r])) };
    }
    return this.rows;
  }

  constructor(private readonly db: Db) {}

  /** Writes the heartbeats kept in memory every `intervalMs` from now on; `flush()` stops nothing. */
  startFlushing(intervalMs: number = MEMBER_FLUSH_MS): void {
    if (this.flusher) return;
    this.flusher = setInterval(() => this.flush(), intervalMs);
    this.flusher.unref();
  }

  /** Writes the heartbeats kept in memory, in one transaction; stops the periodic writes when `stop`. */
  flush(opts: { stop?: boolean } = {}): void {
    if (opts.stop && this.flusher) {
      clearInterval(this.flusher);
      this.flusher = undefined;
    }
    if (this.beats.size === 0) return;
    const write = prepared(this.db, "UPDATE group_members SET last_seen = ?, capacity_json = ?, vm_count = ? WHERE node_id = ?");
    this.db.transaction(() => {
      for (const [nodeId, b] of this.beats) write.run(b.lastSeen, b.capacityJson, b.vmCount, nodeId);
    })();
    if (this.rows) this.foldBeats(this.rows);
    this.beats.clear();
  }

  /**
   * The rows kept in memory, with the heartbeats just written folded in (what a re-read would give),
   * each flushed member's record carried over: a flush changes no record's identity.
   */
  private foldBeats(rows: NonNullable<GroupMemberRepo["rows"]>): void {
    const folded = new Map<Row, Row>();
    for (const [nodeId, b] of this.beats) {
      const old = rows.byNode.get(nodeId);
      if (!old) continue;
      const row: Row = { ...old, last_seen: b.lastSeen, capacity_json: b.capacityJson, vm_count: b.vmCount };
      folded.set(old, row);
      rows.byNode.set(nodeId, row);
      rows.byAddress.set(row.address, row);
      const made = this.records.get(old);
      if (made?.beat === b) this.records.set(row, { beat: undefined, record: made.record });
    }
    if (folded.size > 0) rows.all = rows.all.map((r) => folded.get(r) ?? r);
  }

  /**
   * The table changed under this repo (another master's writes, applied from etcd): its rows are read
   * again, and heartbeats kept in memory, older than those, are dropped.
   */
  reread(): void {
    this.beats.clear();
    this.rows = null;
  }

  /** A stored row with the heartbeat kept in memory for it, if any. */
  private record(r: Row): MemberRecord {
    const beat = r.node_id === null ? undefined : this.beats.get(r.node_id);
    const made = this.records.get(r);
    if (made && made.beat === beat) return made.record;
    const record = Object.freeze(toRecord(beat ? { ...r, last_seen: beat.lastSeen, capacity_json: beat.capacityJson, vm_count: beat.vmCount } : r));
    this.records.set(r, { beat, record });
    return record;
  }

  /** How many members there are (no query: the rows are kept). */
  count(): number {
    return this.table().all.length;
  }

  /** Every member in join order; a member's record is the same object until its row or heartbeat changes. */
  list(): MemberRecord[] {
    return this.table().all.map((r) => this.record(r));
  }

  /**
   * Records a join. A member is the same member when its node id matches, or (without a node id) its
   * address: re-joining updates the record, never duplicates it. A stale record holding the address
   * (another node that used to live there) gives way.
   */
  upsert(
    join: { address: string; nodeId?: string | undefined; nickname?: string | undefined; tls?: TlsEndpoint | undefined },
    now: Date,
  ): MemberRecord {
    const at = now.toISOString();
    this.rows = null;
    return this.db.transaction(() => {
      const byNode = join.nodeId
        ? (prepared(this.db, "SELECT * FROM group_members WHERE node_id = ?").get(join.nodeId) as Row | undefined)
        : undefined;
      const byAddress = prepared(this.db, "SELECT * FROM group_members WHERE address = ?").get(join.address) as
        | Row
        | undefined;
      const existing = byNode ?? byAddress;
      if (byNode && byAddress && byAddress.node_id !== byNode.node_id) {
        prepared(this.db, "DELETE FROM group_members WHERE address = ?").run(join.address);
      }
      if (existing) {
        // A record taken over by another node id never keeps the certificate pinned for the old one.
        const sameNode = (join.nodeId ?? existing.node_id) === existing.node_id;
        const tls = join.tls ?? (sameNode && existing.tls_port !== null ? { port: existing.tls_port, sha256: existing.cert_sha256 } : null);
        prepared(
          this.db,
          `UPDATE group_members SET address = ?, node_id = ?, nickname = ?, last_seen = ?,
             tls_port = ?, cert_sha256 = ?
           WHERE ${existing.node_id && byNode ? "node_id = ?" : "address = ?"}`,
        ).run(
          join.address,
          join.nodeId ?? existing.node_id,
          join.nickname ?? existing.nickname,
          at,
          tls?.port ?? null,
          tls?.sha256 ?? null,
          existing.node_id && byNode ? existing.node_id : existing.address,
        );
      } else {
        prepared(
          this.db,
          `INSERT INTO group_members (address, node_id, nickname, joined_at, last_seen, tls_port, cert_sha256)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ).run(join.address, join.nodeId ?? null, join.nickname ?? "", at, at, join.tls?.port ?? null, join.tls?.sha256 ?? null);
      }
      if (join.nodeId) this.beats.delete(join.nodeId);
      return toRecord(prepared(this.db, "SELECT * FROM group_members WHERE address = ?").get(join.address) as Row);
    })();
  }

  byNodeId(nodeId: string): MemberRecord | undefined {
    const row = this.table().byNode.get(nodeId);
    return row && this.record(row);
  }

  byAddress(address: string): MemberRecord | undefined {
    const row = this.table().byAddress.get(address);
    return row && this.record(row);
  }

  /**
   * Records a heartbeat of a known member (by node id): its current address, capacity and VM count,
   * and its TLS endpoint when the heartbeat names one.
   * Returns false when no member has that node id. A record without a node id (a seed 000 join from
   * that host) holding the new address gives way; another member's record never does (the caller
   * refuses that heartbeat first).
   */
  heartbeat(
    nodeId: string,
    report: { address: string; nickname: string; capacity: unknown; vmCount: number; tls?: TlsEndpoint | undefined },
    now: Date,
  ): boolean {
    const stored = this.table().byNode.get(nodeId);
    if (!stored) return false;
    const sameTls = report.tls === undefined || (report.tls.port === stored.tls_port && report.tls.sha256 === stored.cert_sha256);
    if (stored.address === report.address && stored.nickname === report.nickname && sameTls) {
      this.beats.set(nodeId, { lastSeen: now.toISOString(), capacityJson: JSON.stringify(report.capacity), vmCount: report.vmCount });
      return true;
    }
    this.beats.delete(nodeId);
    this.rows = null;
    return this.db.transaction(() => {
      prepared(this.db, "DELETE FROM group_members WHERE address = ? AND node_id IS NULL").run(report.address);
      const r = prepared(
        this.db,
        `UPDATE group_members SET address = ?, nickname = ?, last_seen = ?, capacity_json = ?, vm_count = ?,
           tls_port = COALESCE(?, tls_port), cert_sha256 = COALESCE(?, cert_sha256)
         WHERE node_id = ?`,
      ).run(
        report.address,
        report.nickname,
        now.toISOString(),
        JSON.stringify(report.capacity),
        report.vmCount,
        report.tls?.port ?? null,
        report.tls?.sha256 ?? null,
        nodeId,
      );
      return r.changes > 0;
    })();
  }

  /** Forgets a member, by node id or address; the removed record, or undefined when none matched. */
  remove(by: { nodeId: string } | { address: string }): MemberRecord | undefined {
    this.rows = null;
    return this.db.transaction(() => {
      const [where, key] = "nodeId" in by ? ["node_id = ?", by.nodeId] : ["address = ?", by.address];
      const row = prepared(this.db, `SELECT * FROM group_members WHERE ${where}`).get(key) as Row | undefined;
      if (!row) return undefined;
      prepared(this.db, `DELETE FROM group_members WHERE ${where}`).run(key);
      const record = this.record(row);
      if (row.node_id !== null) this.beats.delete(row.node_id);
      return record;
    })();
  }
}
