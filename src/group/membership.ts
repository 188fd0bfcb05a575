import type {
  BecomeMember,
  BecomeMemberReply,
  GroupJoin,
  GroupJoinReply,
  GroupList,
  HostConfig,
  MyMaster,
} from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { saveHostConfig } from "../config/host-files.js";
import type { GroupMemberRepo } from "../store/group-members.js";
import { HostApiError, HostClient, UnreachableError, normalizeAddress, seedAddress } from "../sdk/index.js";
import type { Logger } from "../lib/logger.js";
import { joinAddress, localAddressToward, splitAddress } from "./local-address.js";

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
}

/**
 * Group membership as seed 000 defines it: one master records members; a member knows its master.
 * Heartbeats and liveness build on the records kept here.
 */
export class GroupService {
  private host: HostConfig;
  private readonly now: () => Date;

  constructor(private readonly opts: GroupServiceOptions) {
    this.host = opts.hostConfig;
    this.now = opts.now ?? (() => new Date());
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
        state: m.state,
        joined_at: m.joinedAt,
        last_seen: m.lastSeen,
      })),
    };
  }

  myMaster(): MyMaster {
    const host = this.host;
    if (host.host_type !== "slave" || !host.have_group) {
      throw new ApiError(
        "not_member",
        host.host_type === "master" ? "this host is a master, not a member of a group" : "this host is not in a group",
      );
    }
    return { message: "ok", master: host.master };
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
