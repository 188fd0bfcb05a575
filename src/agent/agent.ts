import { diskThrottleOf } from "../vm/io-limits.js";
import type { FastifyInstance } from "fastify";
import { build } from "../server/app.js";
import { createLogger, type Logger } from "../lib/logger.js";
import { openAgentState } from "./state.js";
import { startVmService } from "./vms.js";
import { agentRenters } from "./renters.js";
import { nodeInfo } from "../vm/node-info.js";
import { freePageCache } from "../host/page-cache.js";
import { VERSION } from "../server/app.js";
import { GroupRouter } from "../group/forward.js";
import { createImageCenter, imageUse, serveImages, startCacheSweeps } from "./images.js";
import { GroupVms } from "../group/group-vms.js";
import { DEFAULT_LIVENESS } from "../group/liveness.js";
import { memberCapacity } from "./capacity.js";
import { startAutoJoin } from "./auto-join.js";
import { DiscoveryResponder } from "../group/discovery.js";
import { serveTls, type TlsServer } from "../server/tls-server.js";
import { startRentalExpiry } from "./rental-expiry.js";
import { DiskService } from "../disk/service.js";
import { SnapshotService } from "../snapshot/service.js";
import { LanRegistry } from "../network/lan/registry.js";
import { parseSubnet } from "../network/ipv4.js";
import { startLans } from "./lans.js";
import { splitAddress } from "../group/local-address.js";
import { startUsageRecords } from "./usage.js";
import { DEFAULT_NAT_CIDR } from "./vms.js";

export interface AgentOptions {
  host: string;
  port: number;
  /** The HTTPS port (every route, over TLS with this node's certificate); 0 picks a free one. Default 10443. */
  tlsPort?: number | undefined;
  confDir: string;
  dataDir: string;
  logLevel?: string | undefined;
  /** Address VM port forwards and VNC listen on; default: the same as `host`. */
  forwardHost?: string | undefined;
  /** How VMs are connected (default auto: config.json `network`, else bridged NAT where batu may). */
  network?: "auto" | "bridge" | "user" | undefined;
  /** How many times the data file system's size all VM disks may be promised; default 1 (no overcommit). */
  diskOvercommit?: number | undefined;
  /** vCPUs per host thread the VMs may hold in all; default 1 (no overcommit). */
  cpuOvercommit?: number | undefined;
  /** How long a graceful shutdown waits before powering off; default 60 s. */
  shutdownTimeoutMs?: number | undefined;
  /** How long a client has to send a whole request; default 30 s (headers: 10 s at most). */
  requestTimeoutMs?: number | undefined;
  /** A member's heartbeat period; default 3 s. */
  heartbeatMs?: number | undefined;
  /** On a master: silence after which a member is suspect (default 10 s), then dead (default 60 s). */
  suspectAfterMs?: number | undefined;
  deadAfterMs?: number | undefined;
  /** On a master: heartbeats it takes per second at most (beat-pacing.ts); default 100. */
  maxHeartbeatsPerS?: number | undefined;
  /** Serve this node's image cache as an image server; default config.json `image_server`, else while it is a master. */
  imageServer?: boolean | undefined;
  /** Find the master on the LAN and join it (until this host is a member), with this join token. */
  discover?: { joinToken: string; groupName?: string | undefined } | undefined;
}

export interface RunningAgent {
  app: FastifyInstance;
  nodeId: string;
  url: string;
  /** `https://host:tlsPort`. */
  tlsUrl: string;
  /** SHA-256 of the agent's TLS certificate: what peers (and curl) pin. */
  certSha256: string;
  close(): Promise<void>;
}

/** The HTTPS port when none is given (seed 000's port is 10000; 443 would need privileges). */
export const DEFAULT_TLS_PORT = 10443;

/**
 * Starts the agent of this machine: loads conf (creating defaults), identity and store, serves HTTP.
 * Throws a ConfigError, files untouched, when the conf dir holds something unusable.
 */
export async function startAgent(
  opts: AgentOptions,
  log: Logger = createLogger({ level: opts.logLevel }),
): Promise<RunningAgent> {
  const state = await openAgentState(
    {
      ...opts,
      joinHa: true,
      tlsPort: opts.tlsPort ?? DEFAULT_TLS_PORT,
      liveness: {
        suspectAfterMs: opts.suspectAfterMs ?? DEFAULT_LIVENESS.suspectAfterMs,
        deadAfterMs: opts.deadAfterMs ?? DEFAULT_LIVENESS.deadAfterMs,
      },
    },
    log,
  );
  const { identity, group } = state;
  const agentLog = log.child({ node: identity.nodeId.slice(0, 12) });
  let vmService;
  try {
    vmService = await startVmService(
      state,
      {
        forwardHost: opts.forwardHost ?? opts.host,
        network: opts.network ?? "auto",
        cpuOvercommit: opts.cpuOvercommit ?? 1,
        diskOvercommit: opts.diskOvercommit ?? 1,
        shutdownTimeoutMs: opts.shutdownTimeoutMs ?? 60_000,
      },
      agentLog,
    );
  } catch (e) {
    state.close();
    throw e;
  }
  const { vms, repo, accel, images, capacityOf } = vmService;
  const { renters, forgetStaleNonces } = agentRenters(state);
  const disks = new DiskService({
    dataDir: state.dataDir,
    vms: vms.service,
    repo,
    hypervisor: vmService.hypervisor,
    capacity: vmService.capacity,
    detachTimeoutMs: 10_000,
    diskThrottle: (vm) => diskThrottleOf(vmService.ioLimitsOf(vm)),
  });
  const imageCenter = createImageCenter({
    cache: images.dirs[0]!,
    shipped: images.dirs.slice(1),
    nodeId: identity.nodeId,
    nodeKey: state.nodeKey,
    configured: state.files.system.image_servers ?? [],
    group,
    repo,
    db: state.db,
  });
  const snapshots = new SnapshotService({
    db: state.db,
    vms: vms.service,
    repo,
    images,
    hypervisor: vmService.hypervisor,
    dataDir: state.dataDir,
    backupTimeoutMs: 30 * 60_000,
    capacity: vmService.capacity,
    upload: async (serverId, imageName, owner) => {
      imageCenter.upload(serverId, imageName, owner);
      const end = await imageCenter.finished(imageName, "upload");
      if (end?.status !== "done") throw new Error(end?.error ?? `the upload ${end?.status ?? "did not start"}`);
    },
  });
  // A deleted task's snapshots go with it (those in use stay: SnapshotService.dropTask).
  vms.queries.onChange((c) => {
    if (c.status !== "deleted") return;
    snapshots.dropTask(c.id).then(
      (names) => names.length > 0 && agentLog.info({ vm: c.id, snapshots: names }, "snapshots of a deleted task deleted"),
      (e: unknown) => agentLog.warn({ vm: c.id, err: e }, "snapshots of a deleted task not deleted"),
    );
  });
  const usage = startUsageRecords(state.db, repo, vms);
  const cutShort = await snapshots.recover();
  if (cutShort.length > 0) agentLog.info({ snapshots: cutShort }, "snapshots an agent stop cut short removed");
  const forwardHost = opts.forwardHost ?? opts.host;
  const natSubnet = parseSubnet(state.files.system.nat_cidr ?? DEFAULT_NAT_CIDR) ?? undefined;
  const lanRegistry = new LanRegistry({ db: state.db, ...(natSubnet ? { natSubnet } : {}) });
  const router = new GroupRouter({
    sessions: group.sessions,
    nodeId: identity.nodeId,
    key: state.nodeKey,
    peer: (nodeId) => group.peer(nodeId),
    masterNodeId: () => group.masterNodeId(),
  });
  const app = await build({
    log: agentLog,
    limits: { requestTimeoutMs: opts.requestTimeoutMs ?? 30_000 },
    adminToken: state.tokens.admin,
    tlsPort: () => (state.tlsPort > 0 ? state.tlsPort : undefined),
    metricsToken: state.tokens.metrics,
    rotateToken: (kind) => (state.sharedTokens ? state.sharedTokens.rotate(kind) : state.tokens.rotate(kind)),
    forwards: router,
    systemConfig: () => state.files.system,
    ...(state.ha ? { ha: state.ha } : {}),
    gpus: () => vmService.gpus.inventory(),
    usage: { nodeId: identity.nodeId, report: (from, to) => usage.report(from, to) },
    group,
    vms: vms.service,
    vmQueries: vms.queries,
    disks,
    snapshots,
    images: imageCenter,
    groupVms: new GroupVms({
      nodeId: identity.nodeId,
      selfAddress: () => group.selfAddress,
      isMaster: () => group.isMaster,
      peers: () => group.peers(),
      router,
    }),
    rentals: state.rentals,
    maintenance: vmService.maintenance,
    nodeGpus: async (nodeId) => (nodeId === identity.nodeId ? (await vmService.gpus.counts()).usable : (group.peer(nodeId)?.capacity?.gpu_total ?? undefined)),
    v1: {
      nodeId: identity.nodeId,
      nickname: () => state.files.system.nickname,
      version: VERSION,
      vms: vms.service,
      vmQueries: vms.queries,
      disks,
      snapshots,
      images: imageCenter,
      forwardHost,
      group: { router, peers: () => group.peers(), masterAddress: () => group.masterAddress(), ...(state.ha ? { leader: state.ha } : {}) },
      lans: { registry: lanRegistry, holdsRegistry: () => group.holdsRegistries },
      renters,
      freeMemory: () => freePageCache(state.files.system.allow_drop_caches === true),
      maintenance: () => vmService.maintenance.state,
      nodeInfo: () =>
        nodeInfo({
          version: VERSION,
          dataDir: state.dataDir,
          imageDirs: images.dirs,
          accel,
          vms: vms.queries.list(),
          capacityOf,
          state: renters.nodeState(identity.nodeId),
          address: group.selfAddress,
          gpus: () => vmService.gpus.inventory(),
        }),
    },
  });
  const servesImages = () => opts.imageServer ?? state.files.system.image_server ?? group.isMaster;
  await serveImages(app, { cache: images.dirs[0]!, nodeId: identity.nodeId, adminToken: state.tokens.admin, group, serving: servesImages });
  let tls: TlsServer | undefined;
  try {
    const url = await app.listen({ host: opts.host, port: opts.port });
    state.port = (app.server.address() as { port: number }).port;
    tls = await serveTls(app, {
      host: opts.host,
      port: opts.tlsPort ?? DEFAULT_TLS_PORT,
      key: state.tls.key,
      cert: state.tls.cert,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
    });
    state.tlsPort = tls.port;
    const tlsUrl = url.replace(/^http:/, "https:").replace(/:\d+$/, `:${tls.port}`);
    agentLog.info(
      {
        url,
        tlsUrl,
        certSha256: state.tls.sha256,
        curlPin: state.tls.curlPin,
        role: group.hostConfig.host_type,
        nodeId: identity.nodeId,
        accel: accel.accel,
        confDir: state.confDir,
        dataDir: state.dataDir,
      },
      "agent listening",
    );
    await state.ha?.start({ host: splitAddress(group.selfAddress).host, tlsPort: tls.port, certSha256: state.tls.sha256 });
    const heartbeatMs = opts.heartbeatMs ?? 3000;
    group.start({
      intervalMs: heartbeatMs,
      capacity: () => memberCapacity({ dataDir: state.dataDir, vms: () => vms.queries.list(), version: VERSION, gpus: () => vmService.gpus.counts() }),
    });
    // Masters answer discovery on the interfaces the agent serves (none for a loopback-only agent).
    const responder = new DiscoveryResponder({
      bindHost: opts.host,
      master: () => group.discoveryIdentity(),
      version: VERSION,
      log: agentLog,
    });
    await responder.start();
    const stopExpiry = startRentalExpiry({ state, vms, repo, forgetStaleNonces, log: agentLog });
    const stopLans = startLans({
      nodeId: identity.nodeId,
      registry: lanRegistry,
      network: vmService.network,
      repo,
      vms,
      group,
      log: agentLog,
      unusedMs: () => (state.files.system.lan_unused_days ?? 3) * 86_400_000,
    });
    const stopSweeps = startCacheSweeps({ cache: images.dirs[0]!, center: imageCenter, config: () => state.files.system, inUse: imageUse(repo, state.db), log: agentLog });
    const stopAutoJoin = opts.discover
      ? startAutoJoin({
          group,
          ...opts.discover,
          // Ten missed beats: long enough not to chase a master that is merely restarting.
          lostAfterMs: 10 * heartbeatMs,
          retryMs: Math.min(5000, Math.max(500, heartbeatMs * 5)),
          log: agentLog,
        })
      : () => undefined;
    const tlsServer = tls;
    return {
      app,
      nodeId: identity.nodeId,
      url,
      tlsUrl,
      certSha256: state.tls.sha256,
      close: async () => {
        stopExpiry();
        stopLans();
        stopSweeps();
        stopAutoJoin();
        await imageCenter.close();
        responder.close();
        group.stop();
        const tlsClosed = tlsServer.close();
        await app.close();
        tlsServer.force();
        await tlsClosed;
        router.close();
        await vms.service.close();
        await state.ha?.close();
        state.close();
      },
    };
  } catch (e) {
    group.stop();
    const tlsClosed = tls?.close();
    tls?.force();
    await tlsClosed;
    await app.close();
    router.close();
    await vms.service.close();
    await state.ha?.close();
    state.close();
    throw e;
  }
}
