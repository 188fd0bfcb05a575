import type { FastifyReply, FastifyRequest } from "fastify";
import type { UsageLine } from "../rental/usage.js";
import type { GpuView } from "../vm/guest-gpus.js";
import type { SystemConfig } from "../api/host.js";
import type { GroupService } from "../group/service.js";
import type { Logger } from "../lib/logger.js";
import type { VmService } from "../vm/service.js";
import type { DiskService } from "../disk/service.js";
import type { ImageCenter } from "../image/center.js";
import type { SnapshotService } from "../snapshot/service.js";
import type { VmQueries } from "../vm/queries.js";
import type { GroupVms } from "../group/group-vms.js";
import type { RentalLedger } from "../auth/rental-ledger.js";
import type { V1Deps } from "./routes/v1/deps.js";
import type { TokenKind } from "../auth/tokens.js";
import type { GroupRouter } from "../group/forward.js";
import type { HostMaintenance } from "../host/maintenance.js";

/** What the HTTP layer needs from the rest of the agent: services, never I/O of its own. */
export interface AppDeps {
  log: Logger;
  /** Bounds on what one client may hold (see server/limits.ts); defaults when absent. */
  limits?: { requestTimeoutMs?: number };
  /** The admin token in force now (rotated without a restart). */
  adminToken: () => string;
  /** This agent's HTTPS port (undefined while it serves none: tests of the app alone). */
  tlsPort?: () => number | undefined;
  /** The read-only token of a metrics scraper in force now: it opens `GET /metrics` only. Absent: the admin token alone. */
  metricsToken?: () => string;
  /** Rotates one of this host's tokens; returns the file that holds the new one. Absent: not offered. */
  rotateToken?: (kind: TokenKind) => string | Promise<string>;
  /** Forwarded calls to members as they end (their latency is a metric). Absent: none measured. */
  forwards?: Pick<GroupRouter, "onForward">;
  systemConfig: () => SystemConfig;
  /**
   * A master of a group with several masters (group/ha): a follower sends calls on to the leader
   * (`route` true: answered), and the leader's replies wait for their writes to reach etcd.
   */
  ha?: { route(req: FastifyRequest, reply: FastifyReply): Promise<boolean>; settled(): Promise<void> };
  /** This node's usage records (what each renter's VMs ran), for billing. */
  usage?: { nodeId: string; report(from: Date, to: Date): UsageLine[] };
  /** The host's GPUs for passthrough, with which VM holds each (the operator's view). */
  gpus?: () => Promise<GpuView[]>;
  group: GroupService;
  /** The VM lifecycle (create, actions, changes). */
  vms: VmService;
  /** What the faces read about VMs. */
  vmQueries: VmQueries;
  /** VMs' data disks (`/common/vm/disk/*`). */
  disks: DiskService;
  /** VMs' snapshots (`/common/vm/snapshot/*`). */
  snapshots: SnapshotService;
  /** The node's images and its image servers' (`/common/image/*`). */
  images: ImageCenter;
  /** The group-wide VM list (master) and its member side. */
  groupVms?: GroupVms;
  rentals: RentalLedger;
  /** The host's maintenance state (`/common/host/*`). Absent: not offered. */
  maintenance?: HostMaintenance;
  /** How many GPUs a node of the group can pass through, where known (renting by GPU is checked against it). */
  nodeGpus?: (nodeId: string) => Promise<number | undefined>;
  /** The renter API (seed 001). */
  v1: V1Deps;
}
