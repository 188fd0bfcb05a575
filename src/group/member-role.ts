import type { GroupHeartbeatReply, HostConfig, MemberCapacity, MyMaster, SlaveHostConfig } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import type { Authenticator } from "../auth/signed-envelope.js";
import { normalizeAddress, seedAddress } from "../sdk/address.js";
import type { Logger } from "../lib/logger.js";
import type { DiscoveredMaster } from "./discovery.js";
import type { HostConfigStore } from "./host-config-store.js";
import { HeartbeatSender, type MasterContact } from "./heartbeat.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";
import { nodeKeyAuthenticator } from "../auth/signed-envelope.js";
import type { RentalTerms } from "../auth/rental-ledger.js";
import { openRentalTerms, rentalTermsDigest, type MemberTerms } from "./rental-terms.js";
import type { MemberTermsFile } from "./member-terms-file.js";
import type { LanExchange } from "./lan-exchange.js";
import type { SessionKeys } from "./session-keys.js";

/** What a running agent gives the group for heartbeats: how often, and what to report. */
export interface HeartbeatSchedule {
  intervalMs: number;
  capacity: () => Promise<MemberCapacity>;
}

export interface MemberRoleOptions {
  config: HostConfigStore;
  nodeId: string;
  /** This member's node key: it signs the heartbeats. */
  key: Authenticator;
  agentPort: () => number;
  /** Where this agent serves TLS, and its certificate; undefined while it does not. */
  tls: () => TlsEndpoint | undefined;
  nickname: () => string;
  log: Logger;
  now: () => Date;
  /** Called when the rental terms the master sends change. */
  rentalTermsChanged: () => void;
  /** The LAN networks' side of heartbeats, once the agent's VM layer is up. */
  lans: () => LanExchange | undefined;
  /** The session key with the master (heartbeats carry a MAC; the master's forwarded calls are checked with it). */
  sessions?: SessionKeys;
  /** Where the last accepted rental terms are kept across restarts; absent: in memory only. */
  termsFile?: MemberTermsFile;
}

/**
 * Terms without grants (from a master of the earlier version) are held under the first protocol's
 * digest, which that master knows; this long after they came, the member asks for its terms afresh
 * once, so that a master upgraded since sends the grants.
 */
const GRANTS_ASKED_AGAIN_MS = 10 * 60_000;

/** The terms a member holds: where they came from decides what it tells its master it holds. */
interface HeldTerms {
  terms: MemberTerms;
  /** Of ends and grants as held (rental-terms.ts). */
  digest: string;
  /** A heartbeat answer's (ms since the epoch), or null for terms read back from disk at start. */
  acceptedAt: number | null;
}

/** Before the first heartbeat: nothing known of the master yet. */
const NO_CONTACT: MasterContact = { reachable: false, lastHeartbeat: null, lastError: null };

/**
 * The member's side of the group: it knows its master (host_config.json), sends it heartbeats while
 * the agent runs, reports what they learnt, and follows the master to a new address.
 */
export class MemberRole {
  readonly kind = "member";
  private sender: HeartbeatSender | undefined;
  private held: HeldTerms | undefined;

  constructor(private readonly opts: MemberRoleOptions) {
    const master = this.host.master_node_id;
    const kept = master ? opts.termsFile?.load(opts.nodeId, master) : undefined;
    if (kept) {
      this.held = { terms: kept, digest: rentalTermsDigest(kept.renters, kept.grants), acceptedAt: null };
      opts.log.info({ renters: kept.renters.size }, "rental terms kept from before the restart: in force until the master answers");
    }
  }

  /** host_config.json while this role is in force: a member's. */
  private get host(): SlaveHostConfig {
    const host: HostConfig = this.opts.config.current;
    if (host.host_type !== "slave") throw new Error(`member role with host_type ${host.host_type}: a wiring bug`);
    return host;
  }

  /** The master this member joined, by node id: whose forwarded calls it accepts. */
  get masterNodeId(): string | undefined {
    return this.host.master_node_id;
  }

  /** Starts the heartbeats (the agent is serving); the first one goes now. */
  start(schedule: HeartbeatSchedule): void {
    this.sender = new HeartbeatSender({
      intervalMs: schedule.intervalMs,
      nodeId: this.opts.nodeId,
      key: this.opts.key,
      master: () => this.host.master,
      masterNodeId: () => this.host.master_node_id,
      agentPort: this.opts.agentPort,
      tls: this.opts.tls,
      nickname: this.opts.nickname,
      capacity: schedule.capacity,
      log: this.opts.log,
      now: this.opts.now,
      rentalTermsDigest: () => this.digestToSend(),
      answered: (reply, sentAt) => {
        this.takeRentalTerms(reply, sentAt);
        if (reply.lans) this.opts.lans()?.viewsArrived(reply.lans);
      },
      lanMembers: () => this.opts.lans()?.localMembers(),
      ...(this.opts.sessions ? { sessions: this.opts.sessions } : {}),
    });
    this.sender.start();
  }

  stop(): void {
    this.sender?.stop();
  }

  /** The rental terms of this member's renters, as the master last sent them; undefined before. */
  get rentalTerms(): RentalTerms | undefined {
    return this.held?.terms.renters;
  }

  /** The terms with what each grant gives (when the master sent that): what direct renter calls are served by. */
  get memberTerms(): MemberTerms | undefined {
    return this.held?.terms;
  }

  /**
   * What this member tells its master it holds: nothing for terms read back from disk (the first
   * answer after a restart brings them afresh), nor for grantless terms held long enough to ask again.
   */
  private digestToSend(): string | undefined {
    const held = this.held;
    if (!held || held.acceptedAt === null) return undefined;
    if (held.terms.grants !== undefined) return held.digest;
    return this.opts.now().getTime() - held.acceptedAt < GRANTS_ASKED_AGAIN_MS ? held.digest : undefined;
  }

  /**
   * Keeps the terms of a heartbeat answer when the master this member joined signed them (on disk
   * too); an answer without terms means the master has nothing newer than what this member holds.
   */
  private takeRentalTerms(reply: GroupHeartbeatReply, sentAt: number): void {
    const master = this.host.master_node_id;
    if (!master || !reply.rental_terms) return; // no master node id (joined before batu kept it): nothing can be trusted
    const terms = openRentalTerms(reply.rental_terms, this.opts.nodeId, sentAt, nodeKeyAuthenticator(master));
    if (!terms) {
      this.opts.log.warn({ master: this.host.master }, "rental terms refused: not signed by the master's node key");
      return;
    }
    const digest = rentalTermsDigest(terms.renters, terms.grants);
    const changed = digest !== this.held?.digest;
    this.held = { terms, digest, acceptedAt: this.opts.now().getTime() };
    this.opts.termsFile?.save(master, sentAt, reply.rental_terms);
    if (changed) this.opts.rentalTermsChanged();
  }

  /** What the heartbeats learnt about the master (nothing when none was sent). */
  get contact(): MasterContact {
    return this.sender?.status ?? NO_CONTACT;
  }

  myMaster(): MyMaster {
    const host = this.host;
    if (!host.have_group) throw new ApiError("not_member", "this host is not in a group");
    const contact = this.contact;
    return {
      message: "ok",
      master: host.master,
      reachable: contact.reachable,
      last_heartbeat: contact.lastHeartbeat,
      last_error: contact.lastError,
    };
  }

  /**
   * The master found again at a new address (discovery, by the same node id and a proof of the join
   * token): the one field of host_config.json that changes. False when there is nothing to follow.
   */
  followMaster(found: DiscoveredMaster): boolean {
    const host = this.host;
    if (host.master_node_id !== found.nodeId) return false;
    if (normalizeAddress(host.master) === normalizeAddress(found.address)) return false;
    this.opts.config.save({ ...host, master: seedAddress(found.address) });
    return true;
  }
}
