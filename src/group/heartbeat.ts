import { EnvelopeChecker, nodeKeyAuthenticator, sealEnvelope, type Authenticator, type EnvelopeRefusal } from "../auth/signed-envelope.js";
import { IncreasingCounters } from "../auth/replay-store.js";
import type { GroupHeartbeat, GroupHeartbeatReply, MemberCapacity } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { HostApiError, HostClient, UnreachableError, normalizeAddress } from "../sdk/index.js";
import { PinnedTlsAgent, type TlsEndpoint } from "../sdk/pinned-tls.js";
import type { Logger } from "../lib/logger.js";
import { joinAddress, localAddressToward, splitAddress } from "./local-address.js";
import { MasterTlsPin, type MasterEndpoint } from "./master-tls.js";
import type { LanMember } from "../network/lan/model.js";
import { SESSION_TTL_MS, UNKNOWN_SESSION, type SessionKeys } from "./session-keys.js";
import { openSession } from "./session-exchange.js";
import { MAX_PACED_INTERVAL_MS } from "./beat-pacing.js";

/** A heartbeat older (or further in the future) than this is refused: it bounds replays. */
export const HEARTBEAT_MAX_SKEW_MS = 30_000;

/** Capacity fields in signing order: the signature covers a fixed serialization, never JSON key order. */
const CAPACITY_KEYS = [
  "cpu_threads",
  "memory_total_bytes",
  "memory_available_bytes",
  "disk_total_bytes",
  "disk_free_bytes",
  "gpu_total",
  "gpu_free",
  "vm_count",
  "version",
] as const satisfies readonly (keyof MemberCapacity)[];

const HEARTBEAT_TAG = "batu-heartbeat/1";

/** What a member signs, after the domain tag (so no other signed message can pass for one): every field. */
function heartbeatFields(hb: UnprovenHeartbeat): unknown[] {
  const fields: unknown[] = [hb.node_id, hb.address, hb.nickname, hb.sent_at, ...CAPACITY_KEYS.map((k) => hb.capacity[k]), hb.tls_port ?? null, hb.cert_sha256 ?? null];
  // Appended only when present: a heartbeat without LAN members signs as before.
  if (hb.lans) fields.push(hb.lans.map((m) => [m.network, m.ip, m.task_id]));
  return fields;
}

type UnprovenHeartbeat = Omit<GroupHeartbeat, "signature" | "key_id" | "mac">;

/** Signs a heartbeat with the member's key (its sr25519 node key: `nodeKeyAuthenticator`). */
export function signHeartbeat(hb: UnprovenHeartbeat, key: Authenticator): GroupHeartbeat {
  return { ...hb, signature: sealEnvelope(key, HEARTBEAT_TAG, heartbeatFields(hb)) };
}

/** Proves a heartbeat with the session key the member holds with its master (session-keys.ts). */
export function macHeartbeat(hb: UnprovenHeartbeat, session: { id: string; key: Authenticator }): GroupHeartbeat {
  return { ...hb, key_id: session.id, mac: sealEnvelope(session.key, HEARTBEAT_TAG, heartbeatFields(hb)) };
}

/** Why a heartbeat is refused, as the master answers it (ApiError "unauthorized"). */
const REFUSALS: Record<EnvelopeRefusal, string> = {
  skew: "heartbeat refused: sent_at is more than 30 s away from the master's clock",
  malformed: "heartbeat refused: sent_at is not a time", // unreachable: the schema wants an integer
  replayed: "heartbeat refused: replayed (sent_at not newer than the last one)",
  proof: "heartbeat refused: the signature does not match node_id",
};

/**
 * The master's check of heartbeats: fresh (within HEARTBEAT_MAX_SKEW_MS of its clock), newer than the
 * last one accepted from that node (no replay), signed by the node id recorded at join.
 */
export class HeartbeatVerifier {
  private readonly lastSentAt = new IncreasingCounters();
  private readonly checker = new EnvelopeChecker(HEARTBEAT_MAX_SKEW_MS, this.lastSentAt);

  constructor(
    /** The session keys the master holds with its members: a heartbeat with a MAC is checked with one. */
    private readonly sessions?: SessionKeys,
    /** The key a member's signed heartbeats are checked with: its node key. */
    private readonly keyOf: (nodeId: string) => Authenticator = (nodeId) => nodeKeyAuthenticator(nodeId),
  ) {}

  /**
   * Throws ApiError("unauthorized") naming the reason; records `sent_at` only when everything holds.
   * A heartbeat carries the member's node-key signature (a member of the first protocol, or one
   * without a session yet) or a MAC with a session key this master holds.
   */
  verify(hb: GroupHeartbeat, now: Date): void {
    const { signature, key_id: keyId, mac, ...rest } = hb;
    let key: Authenticator;
    let proof: string;
    if (keyId !== undefined && mac !== undefined && signature === undefined) {
      const session = this.sessions?.get(hb.node_id, keyId);
      if (!session) throw new ApiError("unauthorized", `heartbeat refused: ${UNKNOWN_SESSION} ${keyId} (open a new session)`);
      [key, proof] = [session, mac];
    } else if (signature !== undefined && keyId === undefined && mac === undefined) {
      [key, proof] = [this.keyOf(hb.node_id), signature];
    } else {
      throw new ApiError("unauthorized", "heartbeat refused: give either signature, or key_id and mac");
    }
    const envelope = { tag: HEARTBEAT_TAG, fields: heartbeatFields(rest), at: hb.sent_at, replayKey: { signer: hb.node_id, counter: hb.sent_at }, proof };
    const refused = this.checker.check(envelope, key, now);
    if (refused) throw new ApiError("unauthorized", REFUSALS[refused]);
  }

  /** Forgets a removed member's replay floor. */
  forget(nodeId: string): void {
    this.lastSentAt.forget(nodeId);
  }
}

const lansField = (lans: LanMember[] | undefined) => (lans === undefined ? {} : { lans });
const digestField = (digest: string | undefined) => (digest === undefined ? {} : { rental_terms_digest: digest });

/** What a member knows about its master from its heartbeats. */
export interface MasterContact {
  reachable: boolean;
  lastHeartbeat: string | null;
  lastError: string | null;
}

export interface HeartbeatSenderOptions {
  intervalMs: number;
  nodeId: string;
  /** This member's key (its sr25519 node key). */
  key: Authenticator;
  /** The master's address (`ip` or `ip:port`) while this host is a member; undefined otherwise (nothing is sent). */
  master: () => string | undefined;
  /** The master's node id (host_config.json): the key its TLS certificate must be signed with. */
  masterNodeId: () => string | undefined;
  agentPort: () => number;
  /** Where this member serves TLS, and its certificate: each heartbeat names them, signed. */
  tls: () => TlsEndpoint | undefined;
  nickname: () => string;
  capacity: () => Promise<MemberCapacity>;
  log: Logger;
  now?: () => Date;
  /** The digest of the rental terms this member holds, if any (sent so the master resends them only when changed). */
  rentalTermsDigest?: () => string | undefined;
  /** The master's answer to the heartbeat sent at `sentAt`. */
  answered?: (reply: GroupHeartbeatReply, sentAt: number) => void;
  /** This member's VMs on LAN networks, reported in each heartbeat (the master answers what to build); undefined: not reported. */
  lanMembers?: () => LanMember[] | undefined;
  /** Session keys with the master: heartbeats carry a MAC rather than a signature once one is agreed; absent: always signed. */
  sessions?: SessionKeys;
}

/** After a master answered that it has no sessions (an agent of the first protocol), ask again this much later. */
const SESSIONS_UNSUPPORTED_RETRY_MS = 10 * 60_000;

/**
 * How long a member keeps its connection to the master open between beats: under the agent's
 * keep-alive timeout (server/limits.ts, 35 s), so the master never closes one the member is about to
 * reuse, and over the longest wait a master asks between beats (beat-pacing.ts, 30 s), so a paced
 * member keeps its one connection too. Slower beats (`--heartbeat-ms` above it) reconnect.
 */
const MASTER_CONNECTION_IDLE_MS = 33_000;

/**
 * A member's heartbeat loop. Each beat is signed with the node key (no token travels) and goes over
 * TLS to the master's certificate, pinned by its node id (master-tls.ts). The master keeps members in
 * its store, so after a master restart the next beat is simply accepted again.
 */
export class HeartbeatSender {
  private timer: NodeJS.Timeout | undefined;
  private readonly masterTls = new MasterTlsPin();
  private stopped = true;
  private ownAddress: { master: string; address: string } | undefined;
  private contact: MasterContact = { reachable: false, lastHeartbeat: null, lastError: null };
  private readonly now: () => Date;
  /** Until when the master is taken to have no sessions (ms since the epoch). */
  private sessionsUnsupportedUntil = 0;
  /** How long the master last asked to wait between beats (beat-pacing.ts); 0: no ask. */
  private pacedMs = 0;
  /** One kept TLS connection to the master (its address and pin): a handshake per beat cost both sides. */
  private pool: { endpoint: string; agent: PinnedTlsAgent } | undefined;

  constructor(private readonly opts: HeartbeatSenderOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  get status(): MasterContact {
    return this.contact;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.dropConnection();
  }

  /** The kept connection's pool toward `endpoint`; a pool of another address or pin is closed first. */
  private connectionTo(endpoint: MasterEndpoint): PinnedTlsAgent {
    const key = `${endpoint.address} ${endpoint.sha256}`;
    if (this.pool?.endpoint === key) return this.pool.agent;
    this.dropConnection();
    const agent = new PinnedTlsAgent(endpoint.sha256, { keepAlive: true, maxSockets: 2, maxFreeSockets: 1, timeout: MASTER_CONNECTION_IDLE_MS });
    this.pool = { endpoint: key, agent };
    return agent;
  }

  private dropConnection(): void {
    this.pool?.agent.destroy();
    this.pool = undefined;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.beat().finally(() => this.schedule(this.periodMs));
    }, delayMs);
    // The heartbeat alone never keeps the process alive: the HTTP server does.
    this.timer.unref();
  }

  /** The wait before the next beat: this member's own period, or longer while its master paces the group. */
  get periodMs(): number {
    return Math.max(this.opts.intervalMs, this.pacedMs);
  }

  /** Sends one heartbeat now; never throws (the outcome goes into `status`). */
  async beat(): Promise<void> {
    const configured = this.opts.master();
    if (!configured) return;
    // host_config.json keeps seed 000's form: a bare IP when the master listens on port 10000.
    const master = normalizeAddress(configured);
    const timeoutMs = Math.max(500, Math.min(2000, this.opts.intervalMs));
    try {
      const address = await this.addressToward(master, timeoutMs);
      const endpoint = await this.masterTls.endpoint(master, this.opts.masterNodeId(), timeoutMs);
      const tls = this.opts.tls();
      const report = {
        node_id: this.opts.nodeId,
        address,
        nickname: this.opts.nickname(),
        capacity: await this.opts.capacity(),
        ...(tls ? { tls_port: tls.port, cert_sha256: tls.sha256 } : {}),
        ...digestField(this.opts.rentalTermsDigest?.()),
        ...lansField(this.opts.lanMembers?.()),
      };
      const client = new HostClient(endpoint.address, undefined, timeoutMs, { sha256: endpoint.sha256 }, this.connectionTo(endpoint));
      const { reply, sentAt } = await this.send(client, report);
      // A master of the first protocol does not pace: the member's own period again.
      this.pacedMs = Math.min(MAX_PACED_INTERVAL_MS, reply.next_beat_ms ?? 0);
      this.opts.answered?.(reply, sentAt);
      if (!this.contact.reachable) this.opts.log.info({ master }, "master reachable");
      this.contact = { reachable: true, lastHeartbeat: this.now().toISOString(), lastError: null };
    } catch (e) {
      // Our own address may have changed (DHCP, another interface): find it again next time.
      this.ownAddress = undefined;
      // ... and the master's TLS port (it restarted on another one): ask its hello again, on a new connection.
      if (e instanceof UnreachableError) {
        this.masterTls.forget();
        this.dropConnection();
      }
      const message = e instanceof HostApiError ? `the master refused the heartbeat: ${e.message}` : (e as Error).message;
      if (this.contact.reachable || this.contact.lastError === null) this.opts.log.warn({ master, err: message }, "heartbeat failed");
      this.contact = { ...this.contact, reachable: false, lastError: message };
    }
  }

  /**
   * Sends one heartbeat: with a MAC when a session key is held or can be agreed, else signed. A
   * master that lost the key (it restarted) refuses the MAC: a new session, and the beat once more.
   */
  private async send(client: HostClient, report: Omit<UnprovenHeartbeat, "sent_at">): Promise<{ reply: GroupHeartbeatReply; sentAt: number }> {
    const proven = async () => {
      const hb = { ...report, sent_at: this.now().getTime() };
      const session = await this.session(client);
      return { hb: session ? macHeartbeat(hb, session) : signHeartbeat(hb, this.opts.key), sentAt: hb.sent_at };
    };
    const first = await proven();
    try {
      return { reply: await client.heartbeat(first.hb), sentAt: first.sentAt };
    } catch (e) {
      const master = this.opts.masterNodeId();
      if (!(first.hb.mac && master && e instanceof HostApiError && e.message.includes(UNKNOWN_SESSION))) throw e;
      this.opts.sessions?.forget(master);
      const again = await proven();
      return { reply: await client.heartbeat(again.hb), sentAt: again.sentAt };
    }
  }

  /** The session key with the master, agreed now when there is none or it is due for renewal; undefined: sign instead. */
  private async session(client: HostClient): Promise<{ id: string; key: Authenticator } | undefined> {
    const { sessions } = this.opts;
    const master = this.opts.masterNodeId();
    const now = this.now().getTime();
    // No master node id (a join of the first protocol): nothing to check the master's answer with.
    if (!sessions || !master || now < this.sessionsUnsupportedUntil) return undefined;
    const agreed = sessions.agreedAt(master);
    const held = sessions.current(master);
    if (held && agreed !== undefined && now - agreed < SESSION_TTL_MS) return held;
    try {
      await openSession({ nodeId: this.opts.nodeId, masterNodeId: master, key: this.opts.key, sessions, now: this.now(), send: (b) => client.openSession(b) });
      return sessions.current(master);
    } catch (e) {
      if (e instanceof HostApiError && e.status === 404 && /no route/.test(e.message)) {
        this.sessionsUnsupportedUntil = now + SESSIONS_UNSUPPORTED_RETRY_MS;
        this.opts.log.info({ master }, "the master has no session keys (an earlier version): heartbeats are signed");
      } else {
        this.opts.log.warn({ err: e instanceof Error ? e.message : String(e) }, "no session key with the master: this heartbeat is signed");
      }
      // A key still good (a failed renewal) serves on; else the node key signs.
      return held;
    }
  }

  private async addressToward(master: string, timeoutMs: number): Promise<string> {
    if (this.ownAddress?.master === master) return this.ownAddress.address;
    const { host, port } = splitAddress(master);
    const address = joinAddress(await localAddressToward(host, port, timeoutMs), this.opts.agentPort());
    this.ownAddress = { master, address };
    return address;
  }
}
