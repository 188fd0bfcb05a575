import type { GroupList, GroupMember, MemberCapacity } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import type { MemberState } from "./liveness.js";
import type { MemberRecord } from "./member-repo.js";

/** `GET /master/group/list`'s query, as the service takes it. */
export interface MemberListQuery {
  state?: MemberState;
  limit?: number;
  after?: string;
}

export type HeartbeatProof = NonNullable<GroupMember["heartbeat_proof"]>;

/** A member as a list sees it now: its record, its state, and how its last heartbeat was proven. */
export interface ListedMember {
  record: MemberRecord;
  state: MemberState;
  proof: HeartbeatProof | undefined;
}

/** What a query selects: the members of the page, and (with a filter or a page) `total` and `next`. */
export interface MemberSelection {
  page: ListedMember[];
  total?: number;
  next?: string | null;
}

/**
 * The members a query asks for, in the order they joined: all of them (seed 000), or those in
 * `state`, a page of `limit` after the member at address `after` (members that come or go between
 * pages shift nothing before the cursor).
 */
export function selectMembers(all: ListedMember[], query: MemberListQuery): MemberSelection {
  if (query.state === undefined && query.limit === undefined && query.after === undefined) return { page: all };
  const matching = query.state === undefined ? all : all.filter((m) => m.state === query.state);
  let from = 0;
  if (query.after !== undefined) {
    const at = matching.findIndex((m) => m.record.address === query.after);
    if (at < 0) throw new ApiError("bad_request", `after: no member at ${query.after} in this list (it left, or changed state): start again without after`);
    from = at + 1;
  }
  const page = query.limit === undefined ? matching.slice(from) : matching.slice(from, from + query.limit);
  const more = query.limit !== undefined && from + page.length < matching.length;
  return { page, total: matching.length, ...(query.limit !== undefined ? { next: more ? page.at(-1)!.record.address : null } : {}) };
}

/** A member as `group/list` shows it. */
export function memberView(m: ListedMember): GroupMember {
  const r = m.record;
  return {
    address: r.address,
    node_id: r.nodeId,
    nickname: r.nickname,
    state: m.state,
    joined_at: r.joinedAt,
    last_seen: r.lastSeen,
    capacity: (r.capacity as MemberCapacity | null) ?? null,
    tls_port: r.tls?.port ?? null,
    cert_sha256: r.tls?.sha256 ?? null,
    ...(m.proof ? { heartbeat_proof: m.proof } : {}),
  };
}

/** The list's answer as an object (what Fastify would serialize by the GroupList schema). */
export function memberListAnswer(head: { master: string; group_name: string }, s: MemberSelection): GroupList {
  const member = s.page.map(memberView);
  return { ...head, member, members: member, ...(s.total !== undefined ? { total: s.total } : {}), ...(s.next !== undefined ? { next: s.next } : {}) };
}

const COMMA = Buffer.from(",");

/**
 * The list's answer as JSON bytes, each member's part serialized once and kept while its record (the
 * repo hands out the same record object until the member changes), state and proof stay the same: a
 * list of 1,000 members where a few dozen beat since the last call serializes those few dozen, and
 * the answer is one copy of bytes already made (no 1 MB string to build and encode again: that
 * cost more than the serializing). The bytes are what the GroupList schema's serializer makes of
 * `memberListAnswer` (the route's test holds it so).
 */
export class MemberListJson {
  private readonly parts = new WeakMap<MemberRecord, { state: MemberState; proof: HeartbeatProof | undefined; json: Buffer }>();

  /** `serializeMember`: the GroupMember schema's serializer (the route's, so the bytes are the schema's). */
  constructor(private readonly serializeMember: (m: GroupMember) => string) {}

  /** The answer's bytes in parts, one after the other (the members' kept ones among them), to be joined. */
  answerParts(head: { master: string; group_name: string }, s: MemberSelection): Buffer[] {
    const items: Buffer[] = [];
    for (const m of s.page) {
      if (items.length > 0) items.push(COMMA);
      items.push(this.part(m));
    }
    const total = s.total !== undefined ? `,"total":${s.total}` : "";
    const next = s.next !== undefined ? `,"next":${JSON.stringify(s.next)}` : "";
    return [
      Buffer.from(`{"master":${JSON.stringify(head.master)},"group_name":${JSON.stringify(head.group_name)},"member":[`),
      ...items,
      Buffer.from(`],"members":[`),
      ...items,
      Buffer.from(`]${total}${next}}`),
    ];
  }

  private part(m: ListedMember): Buffer {
    const kept = this.parts.get(m.record);
    if (kept && kept.state === m.state && kept.proof === m.proof) return kept.json;
    const json = Buffer.from(this.serializeMember(memberView(m)));
    this.parts.set(m.record, { state: m.state, proof: m.proof, json });
    return json;
  }
}
