import type { GroupSession, GroupSessionReply } from "../api/host-group-session.js";
import type {
  BecomeMember,
  BecomeMemberReply,
  GroupHeartbeat,
  GroupHeartbeatReply,
  GroupJoin,
  GroupJoinReply,
  GroupList,
  GroupRemove,
  GroupRemoveReply,
  HostConfig,
  MasterHello,
  MyMaster,
} from "../api/host.js";
import { ApiError } from "../api/errors.js";
import type { Authenticator } from "../auth/signed-envelope.js";
import type { RentalGrants, RentalTerms } from "../auth/rental-ledger.js";
import type { MemberTerms } from "./rental-terms.js";
import { MemberTermsFile } from "./member-terms-file.js";
import type { Logger } from "../lib/logger.js";
import type { GroupMemberRepo } from "./member-repo.js";
import { DEFAULT_LIVENESS, type LivenessTimes, type MemberState } from "./liveness.js";
import type { MasterContact } from "./heartbeat.js";
import type { DiscoveredMaster } from "./discovery.js";
import { HostConfigStore } from "./host-config-store.js";
import { JoinAuthenticator } from "./join-authenticator.js";
import { joinMaster } from "./join-master.js";
import { MasterRole, type DiscoveryIdentity, type GroupPeer } from "./master-role.js";
import type { MemberListQuery } from "./member-list.js";
import { MemberRole, type HeartbeatSchedule } from "./member-role.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";
import type { LanExchange } from "./lan-exchange.js";
import { SessionKeys } from "./session-keys.js";

export interface GroupServiceOptions {
  confDir: string;
  hostConfig: HostConfig;
  nodeId: string;
  /** This host's node key: it signs a member's heartbeats. */
  key: Authenticator;
  /** This host's group join token, as it is now (rotated without a restart): what members must prove they hold. */
  joinToken: () => string;
  /** The operator's token as it is now, which seed 000 callers may present to the join endpoint too. */
  adminToken: () => string;
  /** Where this agent serves TLS, and its certificate (the group pins it by the node id); undefined while it does not. */
  tls: () => TlsEndpoint | undefined;
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
  /** Heartbeats a master takes per second at most (beat-pacing.ts). */
  maxHeartbeatsPerS?: number;
  /** A node's rental terms from this host's ledger: a master sends them to its members. */
  rentalTerms: (nodeId: string) => RentalTerms;
  /** What each renter's grant of a node gives, from this host's ledger: sent with the terms. */
  rentalGrants?: (nodeId: string) => RentalGrants;
}

/** The role a host_config.json gives: a master's, a member's, or none ("none": in no group). */
type Role = MasterRole | MemberRole | null;

/**
 * Group membership as seed 000 defines it: one master records members; a member knows its master.
 * The role is chosen once from host_config.json's host_type and switched when it changes (joining a
 * master makes a master a member); each call goes to the role that answers it, any other role
 * refuses it with `not_master` or `not_member`.
 */
export class GroupService {
  private readonly config: HostConfigStore;
  /** The group's clock: members' states and heartbeat ages are computed by it. */
  readonly now: () => Date;
  private startedAt: Date;
  private readonly joins: JoinAuthenticator;
  private role: Role;
  private readonly termsListeners = new Set<() => void>();
  private readonly removedListeners = new Set<(nodeId: string) => void>();
  /** Set while the agent runs: a member role then sends heartbeats. */
  private schedule: HeartbeatSchedule | undefined;
  /** The LAN networks' side of heartbeats (set once the VM layer is up). */
  private lanExchange: LanExchange | undefined;
  /** Session keys with the other side of the group (a master's with each member, a member's with its master). */
  readonly sessions: SessionKeys;

  constructor(private readonly opts: GroupServiceOptions) {
    this.config = new HostConfigStore(opts.confDir, opts.hostConfig);
    this.now = opts.now ?? (() => new Date());
    this.startedAt = this.now();
    this.sessions = new SessionKeys(() => this.now().getTime());
    this.joins = new JoinAuthenticator({ nodeId: opts.nodeId, joinToken: opts.joinToken, adminToken: opts.adminToken, now: this.now });
    this.role = this.roleFor(this.config.current);
  }

  private roleFor(host: HostConfig): Role {
    switch (host.host_type) {
      case "master":
        return new MasterRole({
          nodeId: this.opts.nodeId,
          groupName: host.group_name,
          joinToken: this.opts.joinToken,
          tls: this.opts.tls,
          selfAddress: this.opts.selfAddress,
          agentPort: this.opts.agentPort,
          members: this.opts.members,
          log: this.opts.log,
          now: this.now,
          liveness: this.opts.liveness ?? DEFAULT_LIVENESS,
          ...(this.opts.maxHeartbeatsPerS ? { maxHeartbeatsPerS: this.opts.maxHeartbeatsPerS } : {}),
          startedAt: this.startedAt,
          key: this.opts.key,
          rentalTerms: this.opts.rentalTerms,
          ...(this.opts.rentalGrants ? { rentalGrants: this.opts.rentalGrants } : {}),
          lans: () => this.lanExchange,
          sessions: this.sessions,
        });
      case "slave":
        return new MemberRole({
          config: this.config,
          nodeId: this.opts.nodeId,
          key: this.opts.key,
          agentPort: this.opts.agentPort,
          tls: this.opts.tls,
          nickname: this.opts.nickname,
          log: this.opts.log,
          now: this.now,
          rentalTermsChanged: () => this.termsListeners.forEach((listener) => listener()),
          lans: () => this.lanExchange,
          sessions: this.sessions,
          termsFile: new MemberTermsFile(this.opts.confDir, this.opts.log),
        });
      case "none":
        return null;
    }
  }

  /**
   * This master begins a term as the leader of a group with several masters (group/ha): members'
   * liveness counts from now, as after a restart, since their last beats reached another master.
   */
  newTerm(): void {
    this.startedAt = this.now();
    if (this.role?.kind === "master") this.role = this.roleFor(this.config.current);
  }

  /** The master role, or ApiError `not_master`. */
  private get master(): MasterRole {
    if (this.role?.kind !== "master") throw new ApiError("not_master");
    return this.role;
  }

  get hostConfig(): HostConfig {
    return this.config.current;
  }

  get nodeId(): string {
    return this.opts.nodeId;
  }

  get isMaster(): boolean {
    return this.role?.kind === "master";
  }

  /** This agent's own address as the group sees it (ip:port). */
  get selfAddress(): string {
    return this.opts.selfAddress();
  }

  /** The LAN networks' side of heartbeats, from now on. */
  useLans(exchange: LanExchange | undefined): void {
    this.lanExchange = exchange;
  }

  /** Whether this host is a member of a group (its renters' rentals are its master's). */
  get isMember(): boolean {
    return this.role?.kind === "member";
  }

  /** Whether this host keeps the group's registries (a master, or a host in no group): not a member, nor a master that does not lead. */
  get holdsRegistries(): boolean {
    return this.role?.kind !== "member" && this.writesGroupState;
  }

  /** Set on a master of a group with several masters (group/ha): whether it leads now. */
  private leads: (() => boolean) | undefined;

  /** This master shares its group with other masters; `leads` says whether it leads now. */
  useHa(leads: () => boolean): void {
    this.leads = leads;
  }

  /** Whether this master is one of several sharing the group (group/ha): its own node then hosts no renter. */
  get sharedMasters(): boolean {
    return this.leads !== undefined;
  }

  /**
   * False on a master of several that does not lead: the group's tables are the leader's to write
   * (its sweeps would be undone by the next copy from etcd). True everywhere else.
   */
  get writesGroupState(): boolean {
    return this.leads?.() ?? true;
  }

  /** The agent serves: a member sends heartbeats from now on (and after becoming one). */
  start(schedule: HeartbeatSchedule): void {
    this.schedule = schedule;
    if (this.role?.kind === "member") this.role.start(schedule);
  }

  /** The agent stops: no more heartbeats. */
  stop(): void {
    this.schedule = undefined;
    if (this.role?.kind === "member") this.role.stop();
  }

  /**
   * A member asks this master to record it. `callerIp` is the request's source address; `bearer` the
   * token of its Authorization header, if any (seed 000 callers), else the body's proof must hold.
   */
  recordJoin(body: GroupJoin, callerIp: string, bearer: string | undefined): GroupJoinReply {
    const by = this.joins.check(body, bearer);
    return this.master.recordJoin(body, callerIp, by);
  }

  /** Who this master is, proven over the asker's challenge. */
  hello(challenge: string): MasterHello {
    return this.master.hello(challenge);
  }

  /** What discovery answers with while this host is a master; null otherwise. */
  discoveryIdentity(): DiscoveryIdentity | null {
    // Of several masters, the leader alone answers (it holds the service address members should use).
    return this.role?.kind === "master" && this.writesGroupState ? this.role.discoveryIdentity() : null;
  }

  list(query: { state?: MemberState; limit?: number; after?: string } = {}): GroupList {
    return this.master.list(query);
  }

  /** What `list` answers, before it is made an object: the route serializes it (member-list.ts's MemberListJson). */
  listSelection(query: MemberListQuery = {}): ReturnType<MasterRole["listSelection"]> {
    return this.master.listSelection(query);
  }

  /** The members this master can route to (those that sent a node id); empty on a member. */
  peers(): GroupPeer[] {
    return this.role?.kind === "master" ? this.role.peers() : [];
  }

  /** One routable member by node id, or undefined (not a member, or this host is no master). */
  peer(nodeId: string): GroupPeer | undefined {
    return this.role?.kind === "master" ? this.role.peer(nodeId) : undefined;
  }

  /** A member's heartbeat; `callerIp` is the request's source address (the member's address must be on it). */
  recordHeartbeat(hb: GroupHeartbeat, callerIp: string, localIp?: string): GroupHeartbeatReply {
    return this.master.recordHeartbeat(hb, callerIp, localIp);
  }

  /** A member opens a session key (signed by its node key). */
  openSession(body: GroupSession): GroupSessionReply {
    return this.master.openSession(body);
  }

  remove(body: GroupRemove): GroupRemoveReply {
    const reply = this.master.remove(body);
    if (reply.node_id) for (const l of this.removedListeners) l(reply.node_id);
    return reply;
  }

  /** Calls `listener` with the node id of each member the operator removes. */
  onMemberRemoved(listener: (nodeId: string) => void): void {
    this.removedListeners.add(listener);
  }

  myMaster(): MyMaster {
    if (this.role?.kind === "member") return this.role.myMaster();
    throw new ApiError(
      "not_member",
      this.role?.kind === "master" ? "this host is a master, not a member of a group" : "this host is not in a group",
    );
  }

  /** On a member: the master it joined, whose forwarded calls it accepts; undefined otherwise. */
  masterNodeId(): string | undefined {
    return this.role?.kind === "member" ? this.role.masterNodeId : undefined;
  }

  /**
   * When each renter's use of this host ends or ended: its own ledger's terms, except on a member,
   * where they are the master's, as the last heartbeat answer brought them (undefined before one).
   */
  ownRentalTerms(): RentalTerms | undefined {
    return this.role?.kind === "member" ? this.role.rentalTerms : this.opts.rentalTerms(this.opts.nodeId);
  }

  /**
   * On a member: its master's last terms with what each grant gives (kept across restarts), by
   * which it serves its renters' direct calls; undefined elsewhere, or before any.
   */
  memberTerms(): MemberTerms | undefined {
    return this.role?.kind === "member" ? this.role.memberTerms : undefined;
  }

  /** On a member: its master's address (host_config.json); undefined elsewhere. */
  masterAddress(): string | undefined {
    const host = this.config.current;
    return host.host_type === "slave" ? host.master : undefined;
  }

  /** Calls `listener` whenever a member's rental terms from its master change. */
  onRentalTermsChange(listener: () => void): void {
    this.termsListeners.add(listener);
  }

  /** On a member: what its heartbeats learnt about the master. */
  masterContact(): MasterContact {
    return this.role?.kind === "member" ? this.role.contact : { reachable: false, lastHeartbeat: null, lastError: null };
  }

  /** A member's master found again at a new address; false when there is nothing to follow (see MemberRole). */
  followMaster(found: DiscoveredMaster): boolean {
    return this.role?.kind === "member" ? this.role.followMaster(found) : false;
  }

  /**
   * Makes this host a member of a master's group (join-master.ts), then writes host_config.json and
   * takes the member role at once. Nothing is written if anything fails.
   */
  async becomeMember(req: BecomeMember): Promise<BecomeMemberReply> {
    const tls = this.opts.tls();
    if (!tls) throw new ApiError("conflict", "this agent serves no TLS yet: a member is called over TLS only");
    const { config, reply } = await joinMaster(req, {
      nodeId: this.opts.nodeId,
      key: this.opts.key,
      agentPort: this.opts.agentPort,
      tls: () => tls,
      nickname: this.opts.nickname,
      now: this.now,
    });
    this.config.save(config);
    this.switchRole();
    this.opts.log.info({ master: reply.master, address: reply.address }, "joined group");
    return reply;
  }

  /** Takes the role of the config now in force: the old one stops, the new one starts if the agent serves. */
  private switchRole(): void {
    if (this.role?.kind === "member") this.role.stop();
    this.role = this.roleFor(this.config.current);
    if (this.schedule && this.role?.kind === "member") this.role.start(this.schedule);
  }
}
