import { EnvelopeChecker, nodeKeyAuthenticator, sealEnvelope, type Authenticator, type EnvelopeRefusal } from "../auth/signed-envelope.js";
import { IncreasingCounters } from "../auth/replay-store.js";
import type { GroupHeartbeat, GroupHeartbeatReply, MemberCapacity } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { HostApiError, HostClient, UnreachableError, normalizeAddress } from "../sdk/index.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";
import type { Logger } from "../lib/logger.js";
import { joinAddress, localAddressToward, splitAddress } from "./local-address.js";
import { MasterTlsPin } from "./master-tls.js";
import type { LanMember } from "../network/lan/model.js";

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
function heartbeatFields(hb: Omit<GroupHeartbeat, "signature">): unknown[] {
  const fields: unknown[] = [hb.node_id, hb.address, hb.nickname, hb.sent_at, ...CAPACITY_KEYS.map((k) => hb.capacity[k]), hb.tls_port ?? null, hb.cert_sha256 ?? null];
  // Appended only when present: a heartbeat without LAN members signs as before.
  if (hb.lans) fields.push(hb.lans.map((m) => [m.network, m.ip, m.task_id]));
  return fields;
}

/** Signs a heartbeat with the member's key (its sr25519 node key: `nodeKeyAuthenticator`). */
export function signHeartbeat(hb: Omit<GroupHeartbeat, "signature">, key: Authenticator): GroupHeartbeat {
  return { ...hb, signature: sealEnvelope(key, HEARTBEAT_TAG, heartbeatFields(hb)) };
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
    /** The key a member's heartbeats are checked with: its node key. */
    private readonly keyOf: (nodeId: string) => Authenticator = (nodeId) => nodeKeyAuthenticator(nodeId),
  ) {}

  /** Throws ApiError("unauthorized") naming the reason; records `sent_at` only when everything holds. */
  verify(hb: GroupHeartbeat, now: Date): void {
    const { signature, ...rest } = hb;
    const envelope = {
      tag: HEARTBEAT_TAG,
      fields: heartbeatFields(rest),
      at: hb.sent_at,
      replayKey: { signer: hb.node_id, counter: hb.sent_at },
      proof: signature,
    };
    const refused = this.checker.check(envelope, this.keyOf(hb.node_id), now);
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
}

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
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.beat().finally(() => this.schedule(this.opts.intervalMs));
    }, delayMs);
    // The heartbeat alone never keeps the process alive: the HTTP server does.
    this.timer.unref();
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
      const hb = signHeartbeat(
        {
          node_id: this.opts.nodeId,
          address,
          nickname: this.opts.nickname(),
          sent_at: this.now().getTime(),
          capacity: await this.opts.capacity(),
          ...(tls ? { tls_port: tls.port, cert_sha256: tls.sha256 } : {}),
          ...digestField(this.opts.rentalTermsDigest?.()),
          ...lansField(this.opts.lanMembers?.()),
        },
        this.opts.key,
      );
      const reply = await new HostClient(endpoint.address, undefined, timeoutMs, { sha256: endpoint.sha256 }).heartbeat(hb);
      this.opts.answered?.(reply, hb.sent_at);
      if (!this.contact.reachable) this.opts.log.info({ master }, "master reachable");
      this.contact = { reachable: true, lastHeartbeat: this.now().toISOString(), lastError: null };
    } catch (e) {
      // Our own address may have changed (DHCP, another interface): find it again next time.
      this.ownAddress = undefined;
      // ... and the master's TLS port (it restarted on another one): ask its hello again.
      if (e instanceof UnreachableError) this.masterTls.forget();
      const message = e instanceof HostApiError ? `the master refused the heartbeat: ${e.message}` : (e as Error).message;
      if (this.contact.reachable || this.contact.lastError === null) this.opts.log.warn({ master, err: message }, "heartbeat failed");
      this.contact = { ...this.contact, reachable: false, lastError: message };
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
