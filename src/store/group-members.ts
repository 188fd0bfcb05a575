import type { Db } from "./db.js";

export type MemberState = "alive" | "suspect" | "dead";

export interface MemberRecord {
  address: string;
  nodeId: string | null;
  nickname: string;
  state: MemberState;
  joinedAt: string;
  lastSeen: string;
}

interface Row {
  address: string;
  node_id: string | null;
  nickname: string;
  state: MemberState;
  joined_at: string;
  last_seen: string;
}

const toRecord = (r: Row): MemberRecord => ({
  address: r.address,
  nodeId: r.node_id,
  nickname: r.nickname,
  state: r.state,
  joinedAt: r.joined_at,
  lastSeen: r.last_seen,
});

/** The master's record of its group's members. */
export class GroupMemberRepo {
  constructor(private readonly db: Db) {}

  list(): MemberRecord[] {
    return (this.db.prepare("SELECT * FROM group_members ORDER BY id").all() as Row[]).map(toRecord);
  }

  /**
   * Records a join. A member is the same member when its node id matches, or (without a node id) its
   * address: re-joining updates the record, never duplicates it. A stale record holding the address
   * (another node that used to live there) gives way.
   */
  upsert(join: { address: string; nodeId?: string | undefined; nickname?: string | undefined }, now: Date): MemberRecord {
    const at = now.toISOString();
    return this.db.transaction(() => {
      const byNode = join.nodeId
        ? (this.db.prepare("SELECT * FROM group_members WHERE node_id = ?").get(join.nodeId) as Row | undefined)
        : undefined;
      const byAddress = this.db.prepare("SELECT * FROM group_members WHERE address = ?").get(join.address) as
        | Row
        | undefined;
      const existing = byNode ?? byAddress;
      if (byNode && byAddress && byAddress.node_id !== byNode.node_id) {
        this.db.prepare("DELETE FROM group_members WHERE address = ?").run(join.address);
      }
      if (existing) {
        this.db
          .prepare(
            `UPDATE group_members SET address = ?, node_id = ?, nickname = ?, state = 'alive', last_seen = ?
             WHERE ${existing.node_id && byNode ? "node_id = ?" : "address = ?"}`,
          )
          .run(
            join.address,
            join.nodeId ?? existing.node_id,
            join.nickname ?? existing.nickname,
            at,
            existing.node_id && byNode ? existing.node_id : existing.address,
          );
      } else {
        this.db
          .prepare(
            `INSERT INTO group_members (address, node_id, nickname, state, joined_at, last_seen)
             VALUES (?, ?, ?, 'alive', ?, ?)`,
          )
          .run(join.address, join.nodeId ?? null, join.nickname ?? "", at, at);
      }
      return toRecord(this.db.prepare("SELECT * FROM group_members WHERE address = ?").get(join.address) as Row);
    })();
  }
}
