import type { GroupSession, GroupSessionReply } from "../api/host-group-session.js";
import type {
  GroupHeartbeat,
  GroupHeartbeatReply,
  GroupJoin,
  GroupJoinReply,
  GroupList,
  GroupRemove,
  GroupRemoveReply,
  MasterHello,
  MemberCapacity,
} from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { checkedMemberAddress } from "./member-address.js";
import { normalizeAddress } from "../sdk/address.js";
import type { Logger } from "../lib/logger.js";
import type { GroupMemberRepo, MemberRecord } from "./member-repo.js";
import { memberState, type LivenessTimes, type MemberState } from "./liveness.js";
import { BeatPacer, DEFAULT_MAX_HEARTBEATS_PER_S, pacedLiveness } from "./beat-pacing.js";
import { memberListAnswer, selectMembers, type MemberListQuery, type MemberSelection } from "./member-list.js";
import { HeartbeatVerifier } from "./heartbeat.js";
import { SessionAnswerer } from "./session-exchange.js";
import type { SessionKeys } from "./session-keys.js";
import { masterProof, masterTlsSignature } from "./join-proof.js";
import { holdsTerms, sealRentalTerms } from "./rental-terms.js";
import type { Authenticator } from "../auth/signed-envelope.js";
import type { RentalGrants, RentalTerms } from "../auth/rental-ledger.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";
import type { LanExchange } from "./lan-exchange.js";

/** A member as routing sees it: where it is and whether it is alive. */
export interface GroupPeer {
  nodeId: string;
  address: string;
  nickname: string;
  state: MemberState;
  lastSeen: string;
  capacity: MemberCapacity | null;
  /** Where it serves TLS and the certificate pinned for it; null until it told (no call goes to it). */
  tls: TlsEndpoint | null;
}

/** What discovery answers with on a master (discovery.ts). */
export interface DiscoveryIdentity {
  nodeId: string;
  groupName: string;
  port: number;
  joinToken: string;
}

export interface MasterRoleOptions {
  nodeId: string;
  groupName: string;
  /** This host's group join token, as it is now: what its hello proves it holds. */
  joinToken: () => string;
  /** Where this agent serves TLS, and its certificate; undefined while it does not. */
  tls: () => TlsEndpoint | undefined;
  /** This agent's own address as the group sees it (ip:port). */
  selfAddress: () => string;
  /** The port this agent listens on: what discovery answers. */
  agentPort: () => number;
  members: GroupMemberRepo;
  log: Logger;
  now: () => Date;
  liveness: LivenessTimes;
  /** Heartbeats this master takes per second at most: a larger group's members are told to beat less often (beat-pacing.ts). */
  maxHeartbeatsPerS?: number;
  /** When this agent started: silence is counted from then at the earliest (liveness.ts). */
  startedAt: Date;
  /** This master's node key: it signs the rental terms in heartbeat answers and the TLS endpoint its hello names. */
  key: Authenticator;
  /** A node's rental terms (the ledger's), sent to each member in its heartbeat answers. */
  rentalTerms: (nodeId: string) => RentalTerms;
  /** What each renter's grant of a node gives, sent with its terms (members serve direct calls by it). */
  rentalGrants?: (nodeId: string) => RentalGrants;
  /** The LAN networks' side of heartbeats, once the agent's VM layer is up. */
  lans: () => LanExchange | undefined;
  /** The session keys agreed with members: their heartbeats (and this master's calls to them) use them. */
  sessions: SessionKeys;
}

/**
 * The master's side of the group: it records members (joins already authenticated by the service),
 * accepts their signed heartbeats, lists and forgets them, and says who it is.
 */
export class MasterRole {
  readonly kind = "master";
  private readonly heartbeats: HeartbeatVerifier;
  /** How each member proved its last heartbeat since this master started (shown in the list). */
  private readonly proofs = new Map<string, "session key" | "node key">();
  private readonly sessionAnswerer: SessionAnswerer;
  private readonly pacer: BeatPacer;

  constructor(private readonly opts: MasterRoleOptions) {
    this.pacer = new BeatPacer(opts.maxHeartbeatsPerS ?? DEFAULT_MAX_HEARTBEATS_PER_S);
    this.heartbeats = new HeartbeatVerifier(opts.sessions);
    this.sessionAnswerer = new SessionAnswerer(opts.sessions, opts.key);
  }

  /** A member opens a session key: only a member (by node id) may, proving itself with its node key. */
  openSession(body: GroupSession): GroupSessionReply {
    if (!this.opts.members.byNodeId(body.node_id)) {
      throw new ApiError("not_found", "session refused: this node is not a member of the group (join it again)");
    }
    return this.sessionAnswerer.answer(body, this.opts.now());
  }

  /** A record's state now: computed from its last heartbeat, never stored (see liveness.ts). */
  private stateOf(m: MemberRecord, now: Date = this.opts.now(), times: LivenessTimes = this.liveness(now)): MemberState {
    return memberState(new Date(m.lastSeen), now, times, this.opts.startedAt);
  }

  /** The liveness times now: the configured ones, stretched while members are told to beat less often. */
  private liveness(now: Date): LivenessTimes {
    return pacedLiveness(this.opts.liveness, this.pacer.longestWait(this.opts.members.count(), now.getTime()));
  }

  /**
   * Records an authenticated join at the address it states, which must be on the caller's own IP
   * (`callerIp`) unless the operator asks; none stated: the caller's IP and port 10000.
   */
  recordJoin(body: GroupJoin, callerIp: string, by: "operator" | "member"): GroupJoinReply {
    if (body.node_id === this.opts.nodeId) throw new ApiError("conflict", "a host cannot join its own group");
    const address = checkedMemberAddress(body.address, callerIp, by === "operator");
    // The certificate is pinned only as the member's proofs cover it (the operator's hand-made record names none).
    const tls = by === "member" && body.tls_port !== undefined && body.cert_sha256 !== undefined ? { port: body.tls_port, sha256: body.cert_sha256 } : undefined;
    const rec = this.opts.members.upsert({ address, nodeId: body.node_id, nickname: body.nickname, tls }, this.opts.now());
    this.opts.log.info({ member: rec.address, memberNode: rec.nodeId }, "member recorded");
    return {
      message: "ok",
      master: this.opts.selfAddress(),
      group_name: this.opts.groupName,
      node_id: this.opts.nodeId,
      address: rec.address,
    };
  }

  /**
   * Who this master is, proven over the asker's challenge (the unicast twin of a discovery answer),
   * and where it serves TLS with which certificate, signed by its node key over the same challenge.
   */
  hello(challenge: string): MasterHello {
    const tls = this.opts.tls();
    return {
      node_id: this.opts.nodeId,
      group_name: this.opts.groupName,
      proof: masterProof(this.opts.joinToken(), this.opts.nodeId, this.opts.groupName, challenge),
      ...(tls
        ? { tls_port: tls.port, cert_sha256: tls.sha256, tls_signature: masterTlsSignature(this.opts.key, this.opts.nodeId, challenge, tls) }
        : {}),
    };
  }

  /** What discovery answers with. */
  discoveryIdentity(): DiscoveryIdentity {
    return { nodeId: this.opts.nodeId, groupName: this.opts.groupName, port: this.opts.agentPort(), joinToken: this.opts.joinToken() };
  }

  /** The members a `group/list` query selects (member-list.ts), and the list's head. */
  listSelection(query: MemberListQuery = {}): { head: { master: string; group_name: string }; selection: MemberSelection } {
    const now = this.opts.now();
    const times = this.liveness(now);
    const all = this.opts.members.list().map((record) => ({ record, state: this.stateOf(record, now, times), proof: record.nodeId === null ? undefined : this.proofs.get(record.nodeId) }));
    return { head: { master: this.opts.selfAddress(), group_name: this.opts.groupName }, selection: selectMembers(all, query) };
  }

  /** The members, in the order they joined: all of them (seed 000), or a filtered page (selectMembers). */
  list(query: MemberListQuery = {}): GroupList {
    const { head, selection } = this.listSelection(query);
    return memberListAnswer(head, selection);
  }

  /** The members this master can route to (those that sent a node id). */
  peers(): GroupPeer[] {
    const now = this.opts.now();
    const times = this.liveness(now);
    return this.opts.members
      .list()
      .filter((m): m is MemberRecord & { nodeId: string } => m.nodeId !== null)
      .map((m) => this.toPeer(m, now, times));
  }

  /** One routable member by node id, or undefined. */
  peer(nodeId: string): GroupPeer | undefined {
    const m = this.opts.members.byNodeId(nodeId);
    return m?.nodeId ? this.toPeer({ ...m, nodeId: m.nodeId }) : undefined;
  }

  private toPeer(m: MemberRecord & { nodeId: string }, now?: Date, times?: LivenessTimes): GroupPeer {
    return {
      nodeId: m.nodeId,
      address: m.address,
      nickname: m.nickname,
      state: this.stateOf(m, now, times),
      lastSeen: m.lastSeen,
      capacity: (m.capacity as MemberCapacity | null) ?? null,
      tls: m.tls,
    };
  }

  /**
   * A member's heartbeat. Authenticated by its signature against the node id recorded at join (the
   * join token is never resent); a node that is not a member is told so (404) and must join again.
   * The answer carries the member's rental terms, which it enforces on its renters' VMs, unless the
   * member holds them already.
   */
  recordHeartbeat(hb: GroupHeartbeat, callerIp: string, localIp?: string): GroupHeartbeatReply {
    const now = this.opts.now();
    if (!this.opts.members.byNodeId(hb.node_id)) {
      throw new ApiError("not_found", "heartbeat refused: this node is not a member of the group (join it again)");
    }
    this.heartbeats.verify(hb, now);
    this.proofs.set(hb.node_id, hb.mac !== undefined ? "session key" : "node key");
    // A member moves with its own IP (DHCP), never onto another host or another member's address.
    const address = checkedMemberAddress(hb.address, callerIp);
    const holder = this.opts.members.byAddress(address);
    if (holder?.nodeId && holder.nodeId !== hb.node_id) {
      throw new ApiError("conflict", `address: ${address} is another member's`);
    }
    // Its certificate as its node key signed it: a member that made a new one is pinned to the new one.
    const tls = hb.tls_port !== undefined && hb.cert_sha256 !== undefined ? { port: hb.tls_port, sha256: hb.cert_sha256 } : undefined;
    this.opts.members.heartbeat(hb.node_id, { address, nickname: hb.nickname, capacity: hb.capacity, vmCount: hb.capacity.vm_count, tls }, now);
    const lanExchange = hb.lans ? this.opts.lans() : undefined;
    // The master's own address for this member's VXLAN: the one the member reached it on.
    const lans = lanExchange && hb.lans ? { lans: lanExchange.memberReported(hb.node_id, hb.lans, localIp) } : {};
    const terms = this.opts.rentalTerms(hb.node_id);
    const grants = this.opts.rentalGrants?.(hb.node_id);
    const pace = { next_beat_ms: this.pacer.next(this.opts.members.count(), now.getTime()) };
    if (holdsTerms(hb.rental_terms_digest, terms, grants)) return { message: "ok", ...pace, ...lans };
    return { message: "ok", rental_terms: sealRentalTerms(terms, hb.node_id, hb.sent_at, this.opts.key, grants), ...pace, ...lans };
  }

  /** The operator forgets a member (a dead one is never forgotten by itself). */
  remove(body: GroupRemove): GroupRemoveReply {
    if ((body.node_id === undefined) === (body.address === undefined)) {
      throw new ApiError("bad_request", "node_id: give either node_id or address");
    }
    const rec = this.opts.members.remove(
      body.node_id !== undefined ? { nodeId: body.node_id } : { address: normalizeAddress(body.address!) },
    );
    if (!rec) throw new ApiError("not_found", "no such member");
    if (rec.nodeId) {
      this.heartbeats.forget(rec.nodeId);
      this.sessionAnswerer.forget(rec.nodeId);
      this.proofs.delete(rec.nodeId);
    }
    this.opts.log.info({ member: rec.address, memberNode: rec.nodeId }, "member removed");
    return { message: "ok", address: rec.address, node_id: rec.nodeId };
  }
}
