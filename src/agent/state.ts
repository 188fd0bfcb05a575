import { BACKUP_DB } from "../store/backup.js";
import { join, resolve } from "node:path";
import { ensurePrivateDir } from "../lib/private-files.js";
import { loadHostFiles, type HostFiles } from "../config/host-files.js";
import { loadIdentity, type NodeIdentity } from "../auth/identity.js";
import { openDb, type Db } from "../store/db.js";
import { GroupMemberRepo } from "../group/member-repo.js";
import { GroupService } from "../group/service.js";
import type { Logger } from "../lib/logger.js";
import { selfAddress } from "./self-address.js";
import type { LivenessTimes } from "../group/liveness.js";
import { nodeKeyAuthenticator, type Authenticator } from "../auth/signed-envelope.js";
import { loadTlsIdentity, type TlsIdentity } from "../auth/tls-identity.js";
import { HostTokens } from "../auth/tokens.js";
import { RentalLedger } from "../auth/rental-ledger.js";
import { GroupHa } from "../group/ha/group-ha.js";
import type { SharedTokens } from "../group/ha/shared-identity.js";

/** The state file of an agent, in its data dir. */
export const DB_FILE = BACKUP_DB;

export interface AgentStateOptions {
  confDir: string;
  dataDir: string;
  host: string;
  port: number;
  /** The HTTPS port (0: any; the agent sets it once bound). */
  tlsPort: number;
  /** When members turn suspect and dead (master). */
  liveness?: LivenessTimes | undefined;
  /** Heartbeats a master takes per second at most (beat-pacing.ts). */
  maxHeartbeatsPerS?: number | undefined;
  /** Join the group's other masters through etcd when config.json says so (`group_ha`; the agent only, never an offline command). */
  joinHa?: boolean;
}

/** An agent's loaded conf, identity, store and services: what both the agent and offline CLI commands use. */
export interface AgentState {
  confDir: string;
  dataDir: string;
  files: HostFiles;
  identity: NodeIdentity;
  /** The admin, join and metrics tokens in force (rotated without a restart). */
  tokens: HostTokens;
  /** In a group of masters: rotates a token on every master (tokens.rotate would change this one's alone). */
  sharedTokens: SharedTokens | undefined;
  /** This node's TLS key and self-signed certificate. */
  tls: TlsIdentity;
  /** The node key as the group's signed envelopes use it (forwarded calls, heartbeats). */
  nodeKey: Authenticator;
  db: Db;
  /** The rental ledger of this host's store (a master's grants nodes of its whole group). */
  rentals: RentalLedger;
  group: GroupService;
  /** The port actually listened on (0 in the options means "any"; the agent sets it once bound). */
  port: number;
  /** The HTTPS port actually listened on (as `port`). */
  tlsPort: number;
  /** A master of a group with several masters: its share of them (undefined for a lone master and members). */
  ha: GroupHa | undefined;
  close(): void;
}

/** Loads conf (creating defaults), identity and store. Throws a ConfigError, files untouched, on bad conf. */
export async function openAgentState(opts: AgentStateOptions, log: Logger): Promise<AgentState> {
  const confDir = resolve(opts.confDir);
  const dataDir = resolve(opts.dataDir);
  // Tokens, keys, VM disks and passwords: owner only, whatever the umask.
  ensurePrivateDir(confDir);
  const files = loadHostFiles(confDir);
  let identity = await loadIdentity(confDir);
  let tls = await loadTlsIdentity(confDir, identity.nodeId);
  const host = files.host;
  const haConfig = opts.joinHa && host.host_type === "master" ? files.system.group_ha : undefined;
  const ha = haConfig && host.host_type === "master" ? await GroupHa.connect(haConfig, host.group_name, confDir, log) : undefined;
  if (ha && (await ha.shareIdentity(confDir)).length > 0) {
    // Every master presents the group's identity: the first master's, taken from etcd.
    identity = await loadIdentity(confDir);
    tls = await loadTlsIdentity(confDir, identity.nodeId);
  }
  const tokens = new HostTokens(confDir, { admin: identity.adminToken, join: identity.joinToken, metrics: identity.metricsToken });
  // Rotated on any master of the group, a token reaches this one while it runs.
  const sharedTokens = ha ? await ha.shareTokens(tokens) : undefined;
  ensurePrivateDir(dataDir);
  const db = openDb(join(dataDir, DB_FILE));
  let port = opts.port;
  let tlsPort = opts.tlsPort;
  const nodeKey = nodeKeyAuthenticator(identity.nodeId, (m) => identity.sign(m));
  const rentals = new RentalLedger(db);
  const members = new GroupMemberRepo(db);
  members.startFlushing();
  const group = new GroupService({
    confDir,
    hostConfig: files.host,
    nodeId: identity.nodeId,
    key: nodeKey,
    joinToken: tokens.join,
    adminToken: tokens.admin,
    // Port 0 is "not bound yet": nothing is told about a TLS port no one listens on.
    tls: () => (tlsPort > 0 ? { port: tlsPort, sha256: tls.sha256 } : undefined),
    nickname: () => files.system.nickname,
    selfAddress: () => selfAddress(opts.host, port),
    agentPort: () => port,
    members,
    rentalTerms: (nodeId) => rentals.termsOf(nodeId),
    rentalGrants: (nodeId) => rentals.grantsOf(nodeId),
    log,
    ...(opts.liveness ? { liveness: opts.liveness } : {}),
    ...(opts.maxHeartbeatsPerS ? { maxHeartbeatsPerS: opts.maxHeartbeatsPerS } : {}),
  });
  if (ha) group.useHa(() => ha.leading);
  await ha?.attach({
    db,
    nodeId: identity.nodeId,
    reread: (tables) => tables.has("group_members") && members.reread(),
    newTerm: () => {
      members.reread();
      group.newTerm();
    },
  });
  return {
    confDir,
    dataDir,
    files,
    identity,
    tokens,
    sharedTokens,
    tls,
    nodeKey,
    db,
    rentals,
    group,
    ha,
    get port() {
      return port;
    },
    set port(p: number) {
      port = p;
    },
    get tlsPort() {
      return tlsPort;
    },
    set tlsPort(p: number) {
      tlsPort = p;
    },
    close: () => {
      // Heartbeats kept in memory (group/member-repo.ts) are written before the store closes.
      members.flush({ stop: true });
      db.close();
    },
  };
}
