import type {
  BecomeMember,
  BecomeMemberReply,
  GroupHeartbeat,
  GroupJoin,
  GroupJoinReply,
  GroupList,
  GroupRemove,
  GroupRemoveReply,
  HostConfig,
  MemberCapacity,
  MyMaster,
} from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { saveHostConfig } from "../config/host-files.js";
import type { GroupMemberRepo, MemberRecord, MemberState } from "../store/group-members.js";
import { HostApiError, HostClient, UnreachableError, normalizeAddress, seedAddress } from "../sdk/index.js";
import type { Logger } from "../lib/logger.js";
import { joinAddress, localAddressToward, splitAddress } from "./local-address.js";
import { DEFAULT_LIVENESS, memberState, type LivenessTimes } from "./liveness.js";
import { HeartbeatVerifier, type MasterContact } from "./heartbeat.js";

/** A member as routing sees it: where it is and whether it is alive. */
export interface GroupPeer {
  nodeId: string;
  address: string;
  nickname: string;
  state: MemberState;
  lastSeen: string;
  capacity: MemberCapacity | null;
}

export interface GroupServiceOptions {
  confDir: string;
  hostConfig: HostConfig;
  nodeId: string;
  nickname: () => string;
  /** This agent's own address as the group sees it (ip:port). */
  selfAddress: () => string;
  /** The port this agent listens on: what a member registers with. */
  agentPort: () => number;
  members: GroupMemberRepo;
  log: Logger;
  now?: () => Date;
  /** When members turn suspect and dead (on the master). */
  liveness?: LivenessTimes;
  /** On a member: what its heartbeats learnt about the master. */
  masterContact?: () => MasterContact;
}

/**
 * Group membership as seed 000 defines it: one master records members; a member knows its master.
 * Heartbeats and liveness build on the records kept here.
 */
export class GroupService {
  private host: HostConfig;
  private readonly now: () => Date;
  private readonly startedAt: Date;
  private readonly liveness: LivenessTimes;
  private readonly heartbeats = new HeartbeatVerifier();

  constructor(private readonly opts: GroupServiceOptions) {
    this.host = opts.hostConfig;
    this.now = opts.now ?? (() => new Date());
    this.startedAt = this.now();
    this.liveness = opts.liveness ?? DEFAULT_LIVENESS;
  }

  /** A record's state now: computed from its last heartbeat, never stored (see liveness.ts). */
  private stateOf(m: MemberRecord): MemberState {
    return memberState(new Date(m.lastSeen), this.now(), this.liveness, this.startedAt);
  }

  get hostConfig(): HostConfig {
    return this.host;
  }

  /** A member asks this master to record it. `callerIp` is the request's source address. */
  recordJoin(body: GroupJoin, callerIp: string): GroupJoinReply {
    const host = this.host;
    if (host.host_type !== "master") throw new ApiError("not_master");
    if (body.node_id === this.opts.nodeId) throw new ApiError("conflict", "a host cannot join its own group");
    const address = normalizeAddress(body.address ?? joinAddress(callerIp.replace(/^::ffff:/, ""), 10000));
    const rec = this.opts.members.upsert({ address, nodeId: body.node_id, nickname: body.nickname }, this.now());
    this.opts.log.info({ member: rec.address, memberNode: rec.nodeId }, "member recorded");
    return {
      message: "ok",
      master: this.opts.selfAddress(),
      group_name: host.group_name,
      node_id: this.opts.nodeId,
      address: rec.address,
    };
  }

  list(): GroupList {
    const host = this.host;
    if (host.host_type !== "master") throw new ApiError("not_master");
    return {
      master: this.opts.selfAddress(),
      group_name: host.group_name,
      member: this.opts.members.list().map((m) => ({
        address: m.address,
        node_id: m.nodeId,
        nickname: m.nickname,
        state: this.stateOf(m),
        joined_at: m.joinedAt,
        last_seen: m.lastSeen,
        capacity: (m.capacity as MemberCapacity | null) ?? null,
      })),
    };
  }

  /** The members this master can route to (those that sent a node id); empty on a member. */
  peers(): GroupPeer[] {
    if (this.host.host_type !== "master") return [];
    return this.opts.members
      .list()
      .filter((m): m is MemberRecord & { nodeId: string } => m.nodeId !== null)
      .map((m) => ({
        nodeId: m.nodeId,
        address: m.address,
        nickname: m.nickname,
        state: this.stateOf(m),
        lastSeen: m.lastSeen,
        capacity: (m.capacity as MemberCapacity | null) ?? null,
      }));
  }

  /** One routable member by node id, or undefined (not a member, or this host is no master). */
  peer(nodeId: string): GroupPeer | undefined {
    if (this.host.host_type !== "master") return undefined;
    const m = this.opts.members.byNodeId(nodeId);
    if (!m?.nodeId) return undefined;
    return {
      nodeId: m.nodeId,
      address: m.address,
      nickname: m.nickname,
      state: this.stateOf(m),
      lastSeen: m.lastSeen,
      capacity: (m.capacity as MemberCapacity | null) ?? null,
    };
  }

  /**
   * A member's heartbeat. Authenticated by its signature against the node id recorded at join (the
   * join token is never resent); a node that is not a member is told so (404) and must join again.
   */
  recordHeartbeat(hb: GroupHeartbeat): { message: "ok" } {
    if (this.host.host_type !== "master") throw new ApiError("not_master");
    const now = this.now();
    if (!this.opts.members.byNodeId(hb.node_id)) {
      throw new ApiError("not_found", "heartbeat refused: this node is not a member of the group (join it again)");
    }
    this.heartbeats.verify(hb, now);
    const address = normalizeAddress(hb.address);
    this.opts.members.heartbeat(hb.node_id, { address, nickname: hb.nickname, capacity: hb.capacity, vmCount: hb.capacity.vm_count }, now);
    return { message: "ok" };
  }

  /** The operator forgets a member (a dead one is never forgotten by itself). */
  remove(body: GroupRemove): GroupRemoveReply {
    if (this.host.host_type !== "master") throw new ApiError("not_master");
    if ((body.node_id === undefined) === (body.address === undefined)) {
      throw new ApiError("bad_request", "node_id: give either node_id or address");
    }
    const rec = this.opts.members.remove(
      body.node_id !== undefined ? { nodeId: body.node_id } : { address: normalizeAddress(body.address!) },
    );
    if (!rec) throw new ApiError("not_found", "no such member");
    if (rec.nodeId) this.heartbeats.forget(rec.nodeId);
    this.opts.log.info({ member: rec.address, memberNode: rec.nodeId }, "member removed");
    return { message: "ok", address: rec.address, node_id: rec.nodeId };
  }

  myMaster(): MyMaster {
    const host = this.host;
    if (host.host_type !== "slave" || !host.have_group) {
      throw new ApiError(
        "not_member",
        host.host_type === "master" ? "this host is a master, not a member of a group" : "this host is not in a group",
      );
    }
    const contact = this.opts.masterContact?.() ?? { reachable: false, lastHeartbeat: null, lastError: null };
    return {
      message: "ok",
      master: host.master,
      reachable: contact.reachable,
      last_heartbeat: contact.lastHeartbeat,
      last_error: contact.lastError,
    };
  }

  /**
   * Makes this host a member of `master`'s group: registers with the master using the join token,
   * then writes host_config.json and takes the role at once. Nothing is written if the master refuses.
   */
  async becomeMember(req: BecomeMember): Promise<BecomeMemberReply> {
    const masterAddress = normalizeAddress(req.master);
    const { host, port } = splitAddress(masterAddress);
    let ownIp: string;
    try {
      ownIp = await localAddressToward(host, port);
    } catch (e) {
      throw new ApiError("master_unreachable", `the master ${masterAddress} could not be reached: ${(e as Error).message}`);
    }
    const address = joinAddress(ownIp, this.opts.agentPort());
    let reply: GroupJoinReply;
    try {
      reply = await new HostClient(masterAddress).recordJoin(
        { address, node_id: this.opts.nodeId, nickname: this.opts.nickname() },
        req.token,
      );
    } catch (e) {
      if (e instanceof UnreachableError) throw new ApiError("master_unreachable", e.message);
      if (e instanceof HostApiError) {
        throw new ApiError("upstream_refused", `the master ${masterAddress} refused to record this host: ${e.message}`);
      }
      throw e;
    }
    const next: HostConfig = {
      host_type: "slave",
      master: seedAddress(masterAddress),
      have_group: true,
      group_name: reply.group_name,
      master_node_id: reply.node_id,
    };
    saveHostConfig(this.opts.confDir, next);
    this.host = next;
    this.opts.log.info({ master: masterAddress, address: reply.address }, "joined group");
    return { message: "ok", master: masterAddress, address: reply.address, group_name: reply.group_name };
  }
}
