/**
 * A master of a group with several masters (config.json `group_ha`; docs/ha.md). All of them share
 * one identity and the group's tables through etcd; the one elected leads: it answers the member
 * protocol, writes the tables (shipped to etcd before each reply), runs the group's jobs and holds
 * the service address. The others keep their copies current, answer reads and the renter calls they
 * only route to a member (server/routes/v1/follower.ts), and pass the rest on.
 * A lone master (no `group_ha`) never loads this: it keeps its tables in SQLite alone.
 */
import { Etcd3 } from "etcd3";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { GroupHaConfig } from "../../api/host-ha.js";
import { ApiError } from "../../api/errors.js";
import { ConfigError } from "../../config/json-file.js";
import type { Db } from "../../store/db.js";
import type { Logger } from "../../lib/logger.js";
import { ETCD_GRPC_OPTIONS, ReplicatedTables } from "./replicated-tables.js";
import { Leadership } from "./leadership.js";
import { ServiceAddress } from "./service-address.js";
import { FollowerProxy, goesToLeader, type LeaderEndpoint } from "./follower-proxy.js";
import { shareIdentity, SharedTokens, type TokenHolder } from "./shared-identity.js";

/** How often writes no request waits for (heartbeats' batch, sweeps) are shipped. */
const SHIP_EVERY_MS = 200;
const DEFAULT_LEASE_TTL_S = 5;

export interface GroupHaAttach {
  db: Db;
  /** This master's node id: who seeded the group's tables (a label in etcd). */
  nodeId: string;
  /** Caches over the shared tables forget what they hold (the tables changed under them). */
  reread: (tables: ReadonlySet<string>) => void;
  /** This master starts a term as leader: members' liveness counts from now. */
  newTerm: () => void;
}

export class GroupHa {
  private tables: ReplicatedTables | undefined;
  private leadership: Leadership | undefined;
  private proxy: FollowerProxy | undefined;
  private readonly address: ServiceAddress | undefined;
  private shipper: NodeJS.Timeout | undefined;
  private leaderAt: LeaderEndpoint | undefined;
  private ready = false;
  private attached: GroupHaAttach | undefined;
  /** The resync under way, whether it must run once more, and the retry due (one of each at most). */
  private resyncing: Promise<void> | undefined;
  private resyncAgain = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** The group's tokens followed through etcd (shareTokens). */
  private sharedTokens: SharedTokens | undefined;

  private constructor(
    private readonly config: GroupHaConfig,
    private readonly etcd: Etcd3,
    /** e.g. `/batu/<group>/`. */
    readonly prefix: string,
    private readonly log: Logger,
  ) {
    this.address = config.service_address ? new ServiceAddress(config.service_address, config.service_interface ?? "eth0", log) : undefined;
  }

  /** Connects to etcd (checked with one read; throws saying why not). `confDir` anchors relative file names. */
  static async connect(config: GroupHaConfig, groupName: string, confDir: string, log: Logger): Promise<GroupHa> {
    const credentials = etcdCredentials(config, confDir);
    const etcd = new Etcd3({ hosts: config.etcd_endpoints, dialTimeout: 5_000, grpcOptions: ETCD_GRPC_OPTIONS, ...(credentials ? { credentials } : {}) });
    try {
      await etcd.get("/batu/ping").string();
    } catch (e) {
      etcd.close();
      throw new Error(`group_ha: etcd at ${config.etcd_endpoints.join(", ")} cannot be reached: ${(e as Error).message}`);
    }
    return new GroupHa(config, etcd, `/batu/${groupName}/`, log);
  }

  /** Takes the group's identity files (or gives this master's, if first); returns those replaced. */
  shareIdentity(confDir: string): Promise<string[]> {
    return shareIdentity(this.etcd, confDir, `${this.prefix}identity/`);
  }

  /** Keeps `tokens` the group's while this master runs: a rotation on any master reaches it (shared-identity.ts). */
  async shareTokens(tokens: TokenHolder): Promise<SharedTokens> {
    const shared = new SharedTokens(this.etcd, `${this.prefix}identity/`, tokens, this.log);
    await shared.follow();
    this.sharedTokens = shared;
    return shared;
  }

  /**
   * Makes the store a copy of the group's tables and keeps it current; the first master of the group
   * puts its own tables there first (a lone master turned into the first of several loses nothing).
   * A stale service address (this host crashed while leading) is removed before anything.
   */
  async attach(attach: GroupHaAttach): Promise<void> {
    this.attached = attach;
    await this.address?.release();
    this.tables = new ReplicatedTables(attach.db, this.etcd, `${this.prefix}tables/`);
    this.tables.onApplied(attach.reread);
    const seeded = await this.tables.seed(`${this.prefix}seeded`, attach.nodeId);
    if (seeded > 0) this.log.info({ rows: seeded }, "group_ha: this master's tables are the group's first");
    await this.follow();
  }

  private async follow(): Promise<void> {
    const tables = this.tables!;
    await tables.load();
    // A leader applies nothing from etcd: what is there is its own, and an echo could undo a later write.
    if (this.leadership?.leading) return;
    await tables.follow((e) => {
      this.log.warn({ err: e.message }, "group_ha: the watch of the group's tables failed; reloading");
      this.resyncLater(1_000);
    });
  }

  /**
   * This copy may differ from etcd's (a write not shipped, a watch lost): made etcd's again. A
   * leader whose write failed gives the lead up first (another master may hold a newer copy) and
   * stands again.
   */
  private resync(): Promise<void> {
    // One at a time, run again once if asked meanwhile: every failed write, watch and load asks, and
    // as many reloads of the whole group at once would be a storm that keeps etcd's client failing.
    if (this.resyncing) {
      this.resyncAgain = true;
      return this.resyncing;
    }
    this.resyncing = (async () => {
      do {
        this.resyncAgain = false;
        await this.reload();
      } while (this.resyncAgain);
    })().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  /** A resync in `ms`, unless one is already due. */
  private resyncLater(ms: number): void {
    if (this.resyncTimer) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      void this.resync();
    }, ms);
    this.resyncTimer.unref();
  }

  private async reload(): Promise<void> {
    if (this.leadership?.leading) {
      this.ready = false;
      await this.leadership.stop();
      await this.address?.release();
      this.standAgain();
    }
    await this.follow().catch((e: Error) => {
      this.log.warn({ err: e.message }, "group_ha: cannot reload the group's tables; retrying");
      this.resyncLater(2_000);
    });
  }

  private campaignAs: { host: string; tlsPort: number } | undefined;

  /** Stands for election once the agent serves at `host` (its own LAN address) and `tlsPort`. */
  async start(own: { host: string; tlsPort: number; certSha256: string }): Promise<void> {
    this.campaignAs = { host: own.host, tlsPort: own.tlsPort };
    // Never itself: between its election and its first reply, the election names this master already.
    const isOwn = (at: LeaderEndpoint | undefined) => at?.host === own.host && at.tlsPort === own.tlsPort;
    this.proxy = new FollowerProxy(own.certSha256, () => (this.leading || isOwn(this.leaderAt) ? undefined : this.leaderAt));
    this.shipper = setInterval(() => this.shipBackground(), SHIP_EVERY_MS);
    this.shipper.unref();
    await this.campaign();
  }

  /** Campaigns again, retrying while etcd cannot be reached (never an unhandled rejection). */
  private standAgain(): void {
    this.campaign().catch((e: Error) => {
      this.log.warn({ err: e.message }, "group_ha: cannot stand for election; retrying");
      setTimeout(() => this.standAgain(), 2_000).unref();
    });
  }

  private async campaign(): Promise<void> {
    const own = this.campaignAs!;
    this.leadership = new Leadership(this.etcd, {
      name: `${this.prefix}leader`,
      ttlSeconds: this.config.lease_ttl_s ?? DEFAULT_LEASE_TTL_S,
      address: JSON.stringify(own),
      log: this.log,
      events: {
        elected: () => this.lead(),
        deposed: (why) => void this.step(why),
        leader: (value) => {
          const at = parseLeader(value);
          if (at?.host !== this.leaderAt?.host || at?.tlsPort !== this.leaderAt?.tlsPort) this.proxy?.leaderChanged();
          this.leaderAt = at;
        },
      },
    });
    await this.leadership.start();
  }

  /** Elected: the copy made current (a fresh load), the term begun, then the address taken. */
  private async lead(): Promise<void> {
    const tables = this.tables!;
    this.ready = false;
    await tables.unfollow();
    await tables.load();
    await tables.unfollow(); // a resync may have started following meanwhile
    this.attached!.newTerm();
    this.ready = true;
    await this.address?.take().catch((e: Error) => this.log.error({ err: e.message }, "group_ha: cannot take the service address"));
  }

  /** Deposed: the address given up, the copy made etcd's again, and followed. */
  private async step(why: Error): Promise<void> {
    this.ready = false;
    this.log.warn({ err: why.message }, "group_ha: this master no longer leads");
    await this.address?.release();
    await this.resync();
  }

  get leading(): boolean {
    return Boolean(this.leadership?.leading && this.ready);
  }

  /** The leader's endpoint, as the election says (this master's own while it leads). */
  get leader(): LeaderEndpoint | undefined {
    return this.leaderAt;
  }

  /** What the agent's onRequest hook asks first: true when a follower sent the call on. */
  async route(req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    if (this.leading) return false;
    if (!this.proxy) {
      if (goesToLeader(req.method, req.url)) throw new ApiError("not_leader", "this master has not joined its group's election yet: retry");
      return false;
    }
    return this.proxy.handle(req, reply);
  }

  /** Whether another master leads (or none does yet): renter calls this one does not answer itself go on with `passOn`. */
  follows(): boolean {
    return !this.leading;
  }

  /** A renter call a follower does not answer itself, its body read already (`bodyText`): the leader's reply is sent. */
  async passOn(req: FastifyRequest, reply: FastifyReply, bodyText: string): Promise<void> {
    if (!this.proxy) throw new ApiError("not_leader", "this master has not joined its group's election yet: retry");
    await this.proxy.relayRead(req, reply, bodyText);
  }

  /** What each reply waits for on the leader: its writes in etcd. A follower's own writes are dropped (never the group's). */
  async settled(): Promise<void> {
    const tables = this.tables;
    if (!tables?.pending()) return;
    const key = this.leading ? this.leadership?.key : undefined;
    if (!key) {
      tables.discardPending();
      return;
    }
    try {
      await tables.settled(() => this.leadership?.key);
    } catch (e) {
      void this.resync();
      throw new ApiError("not_leader", `the change was not committed to the group (${(e as Error).message}): retry`);
    }
  }

  /** Ships what no reply waited for: heartbeats' batch, sweeps, renter calls' nonces (all of the outbox). */
  private shipBackground(): void {
    const tables = this.tables;
    if (!tables?.pending()) return;
    if (!this.leading) return tables.discardPending();
    tables.flush(() => this.leadership?.key).catch((e: Error) => {
      this.log.warn({ err: e.message }, "group_ha: background writes not shipped; reloading the group's tables");
      void this.resync();
    });
  }

  async close(): Promise<void> {
    clearInterval(this.shipper);
    clearTimeout(this.resyncTimer);
    // Whatever no reply waited for (nonces, the last heartbeats) goes before the lead does.
    if (this.leading) await this.tables?.flush(() => this.leadership?.key).catch(() => undefined);
    await this.leadership?.stop();
    await this.address?.release();
    await this.tables?.close();
    this.proxy?.close();
    await this.sharedTokens?.close();
    this.etcd.close();
  }
}

/** The TLS files config.json names, read; undefined for plain http endpoints. Throws a ConfigError naming the field. */
function etcdCredentials(config: GroupHaConfig, confDir: string): { rootCertificate: Buffer; certChain?: Buffer; privateKey?: Buffer } | undefined {
  const tls = config.etcd_endpoints.some((e) => e.startsWith("https://"));
  const read = (field: "etcd_ca_file" | "etcd_cert_file" | "etcd_key_file") => {
    const name = config[field];
    if (name === undefined) return undefined;
    try {
      return readFileSync(resolve(confDir, name));
    } catch (e) {
      throw new ConfigError(join(confDir, "config.json"), `group_ha.${field}`, `cannot be read: ${(e as Error).message}`);
    }
  };
  const [ca, cert, key] = [read("etcd_ca_file"), read("etcd_cert_file"), read("etcd_key_file")];
  if (!tls) {
    if (ca || cert || key) throw new ConfigError(join(confDir, "config.json"), "group_ha.etcd_ca_file", "is for https:// endpoints only");
    return undefined;
  }
  if (!ca) throw new ConfigError(join(confDir, "config.json"), "group_ha.etcd_ca_file", "is required with https:// endpoints");
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError(join(confDir, "config.json"), "group_ha.etcd_cert_file", "and etcd_key_file go together");
  return { rootCertificate: ca, ...(cert ? { certChain: cert } : {}), ...(key ? { privateKey: key } : {}) };
}

function parseLeader(value: string | undefined): LeaderEndpoint | undefined {
  if (!value) return undefined;
  try {
    const parsed = JSON.parse(value) as LeaderEndpoint;
    return typeof parsed.host === "string" && typeof parsed.tlsPort === "number" ? parsed : undefined;
  } catch {
    return undefined;
  }
}
