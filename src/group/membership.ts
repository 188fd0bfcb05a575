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
  MasterHello,
  MemberCapacity,
  MyMaster,
} from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { saveHostConfig } from "../config/host-files.js";
import type { GroupMemberRepo, MemberRecord } from "./member-repo.js";
import type { MemberState } from "./liveness.js";
import { HostApiError, HostClient, UnreachableError, normalizeAddress, seedAddress } from "../sdk/index.js";
import type { Logger } from "../lib/logger.js";
import { joinAddress, localAddressToward, splitAddress } from "./local-address.js";
import { DEFAULT_LIVENESS, memberState, type LivenessTimes } from "./liveness.js";
import { HeartbeatVerifier, type MasterContact } from "./heartbeat.js";
import { JoinProofVerifier, masterProof, memberJoinProof, newNonce, verifyMasterProof } from "./join-proof.js";
import { DiscoveryError, discoverMaster, type DiscoveredMaster } from "./discovery.js";
import { secretEquals } from "../auth/secrets.js";

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
  /** This host's group join token: what members must prove they hold. */
  joinToken: string;
  /** The operator's token, which seed 000 callers may present to the join endpoint too. */
  adminToken: string;
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
  private readonly joinProofs: JoinProofVerifier;

  constructor(private readonly opts: GroupServiceOptions) {
    this.host = opts.hostConfig;
    this.now = opts.now ?? (() => new Date());
    this.startedAt = this.now();
    this.liveness = opts.liveness ?? DEFAULT_LIVENESS;
    this.joinProofs = new JoinProofVerifier(this.now);
  }

  /** A record's state now: computed from its last heartbeat, never stored (see liveness.ts). */
  private stateOf(m: MemberRecord): MemberState {
    return memberState(new Date(m.lastSeen), this.now(), this.liveness, this.startedAt);
  }

  get hostConfig(): HostConfig {
    return this.host;
  }

  get nodeId(): string {
    return this.opts.nodeId;
  }

  /**
   * A member's master found again at a new address (discovery, by the same node id and a proof of the
   * join token): the one field of host_config.json that changes. False when there is nothing to follow.
   */
  followMaster(found: DiscoveredMaster): boolean {
    const host = this.host;
    if (host.host_type !== "slave" || host.master_node_id !== found.nodeId) return false;
    if (normalizeAddress(host.master) === normalizeAddress(found.address)) return false;
    const next: HostConfig = { ...host, master: seedAddress(found.address) };
    saveHostConfig(this.opts.confDir, next);
    this.host = next;
    return true;
  }

  /** This agent's own address as the group sees it (ip:port). */
  get selfAddress(): string {
    return this.opts.selfAddress();
  }

  /**
   * A member asks this master to record it. `callerIp` is the request's source address; `bearer` the
   * token of its Authorization header, if any (seed 000 callers), else the body's proof must hold.
   */
  recordJoin(body: GroupJoin, callerIp: string, bearer: string | undefined): GroupJoinReply {
    this.authenticateJoin(body, bearer);
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

  private authenticateJoin(body: GroupJoin, bearer: string | undefined): void {
    if (bearer !== undefined) {
      if (!secretEquals(bearer, this.opts.joinToken) && !secretEquals(bearer, this.opts.adminToken)) {
        throw new ApiError("unauthorized", "wrong bearer token");
      }
      return;
    }
    if (!body.proof) throw new ApiError("unauthorized", "missing bearer token (Authorization: Bearer <join token>) or join proof");
    if (body.node_id === undefined || body.address === undefined) {
      throw new ApiError("bad_request", "proof: a join proof needs node_id and address in the body");
    }
    const claim = {
      masterNodeId: this.opts.nodeId,
      nodeId: body.node_id,
      address: body.address,
      nickname: body.nickname ?? "",
      at: body.proof.at,
      nonce: body.proof.nonce,
    };
    const refused = this.joinProofs.check(this.opts.joinToken, claim, body.proof.mac);
    if (refused) throw new ApiError("unauthorized", `join refused: ${refused}`);
  }

  /** Who this master is, proven over the asker's challenge (the unicast twin of a discovery answer). */
  hello(challenge: string): MasterHello {
    const host = this.host;
    if (host.host_type !== "master") throw new ApiError("not_master");
    return {
      node_id: this.opts.nodeId,
      group_name: host.group_name,
      proof: masterProof(this.opts.joinToken, this.opts.nodeId, host.group_name, challenge),
    };
  }

  /** What discovery answers with while this host is a master; null otherwise. */
  discoveryIdentity(): { nodeId: string; groupName: string; port: number; joinToken: string } | null {
    const host = this.host;
    if (host.host_type !== "master") return null;
    return { nodeId: this.opts.nodeId, groupName: host.group_name, port: this.opts.agentPort(), joinToken: this.opts.joinToken };
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
      .map((m) => this.toPeer(m));
  }

  /** One routable member by node id, or undefined (not a member, or this host is no master). */
  peer(nodeId: string): GroupPeer | undefined {
    if (this.host.host_type !== "master") return undefined;
    const m = this.opts.members.byNodeId(nodeId);
    return m?.nodeId ? this.toPeer({ ...m, nodeId: m.nodeId }) : undefined;
  }

  private toPeer(m: MemberRecord & { nodeId: string }): GroupPeer {
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
   * Makes this host a member of a master's group, named by address or found on the LAN: checks that
   * the master holds the join token (its proof over our challenge), registers with a proof of our own
   * (the token is never sent), then writes host_config.json and takes the role at once. Nothing is
   * written if anything fails.
   */
  async becomeMember(req: BecomeMember): Promise<BecomeMemberReply> {
    if ((req.master === undefined) === (req.discover !== true)) {
      throw new ApiError("bad_request", "master: give either a master address or discover: true");
    }
    const master = req.master !== undefined ? await this.helloAt(normalizeAddress(req.master), req.token) : await this.discover(req);
    const { host, port } = splitAddress(master.address);
    let ownIp: string;
    try {
      ownIp = await localAddressToward(host, port);
    } catch (e) {
      throw new ApiError("master_unreachable", `the master ${master.address} could not be reached: ${(e as Error).message}`);
    }
    const address = joinAddress(ownIp, this.opts.agentPort());
    const nickname = this.opts.nickname();
    const at = this.now().getTime();
    const nonce = newNonce();
    const mac = memberJoinProof(req.token, { masterNodeId: master.nodeId, nodeId: this.opts.nodeId, address, nickname, at, nonce });
    let reply: GroupJoinReply;
    try {
      reply = await new HostClient(master.address).recordJoin({ address, node_id: this.opts.nodeId, nickname, proof: { at, nonce, mac } });
    } catch (e) {
      throw this.upstreamError(master.address, e, "record this host");
    }
    const next: HostConfig = {
      host_type: "slave",
      master: seedAddress(master.address),
      have_group: true,
      group_name: reply.group_name,
      master_node_id: master.nodeId,
    };
    saveHostConfig(this.opts.confDir, next);
    this.host = next;
    this.opts.log.info({ master: master.address, address: reply.address }, "joined group");
    return { message: "ok", master: master.address, address: reply.address, group_name: reply.group_name };
  }

  private async discover(req: BecomeMember): Promise<DiscoveredMaster> {
    try {
      return await discoverMaster({ joinToken: req.token, groupName: req.group_name, selfNodeId: this.opts.nodeId });
    } catch (e) {
      if (e instanceof DiscoveryError) throw new ApiError("master_unreachable", `discovery: ${e.message}`);
      throw e;
    }
  }

  /** Asks the host at `address` who it is, and believes it only if it proves it holds the token. */
  private async helloAt(address: string, token: string): Promise<DiscoveredMaster> {
    const challenge = newNonce();
    let hello: MasterHello;
    try {
      hello = await new HostClient(address).hello(challenge);
    } catch (e) {
      throw this.upstreamError(address, e, "say who it is");
    }
    if (hello.node_id === this.opts.nodeId) throw new ApiError("conflict", "a host cannot join its own group");
    if (!verifyMasterProof(token, hello, challenge)) {
      throw new ApiError("upstream_refused", `the master ${address} does not hold this join token: wrong token, or not the master you meant`);
    }
    return { address, nodeId: hello.node_id, groupName: hello.group_name };
  }

  private upstreamError(address: string, e: unknown, what: string): unknown {
    if (e instanceof UnreachableError) return new ApiError("master_unreachable", e.message);
    if (e instanceof HostApiError) return new ApiError("upstream_refused", `the master ${address} refused to ${what}: ${e.message}`);
    return e;
  }
}
