import type { FastifyReply, FastifyRequest } from "fastify";
import type { SignedNonce } from "../../../auth/authorize.js";
import type { MaintenanceState } from "../../../host/maintenance.js";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { VmService } from "../../../vm/service.js";
import type { VmQueries } from "../../../vm/queries.js";
import type { DiskService } from "../../../disk/service.js";
import type { SnapshotService } from "../../../snapshot/service.js";
import type { ImageCenter } from "../../../image/center.js";
import type { GroupRouter } from "../../../group/forward.js";
import type { GroupPeer } from "../../../group/master-role.js";
import type { LanRegistry } from "../../../network/lan/registry.js";
import type { RentalLimits } from "../../../auth/rental-ledger.js";

/** What the renter API needs to know who is calling. */
export interface RenterAuth {
  /** Authenticates the request for `nodeId` (rental active, signature or session valid); the renter's id. Throws DbcError. */
  authorize(body: DbcRequest, nodeId: string): string;
  /** The renter's session id (wallet or multisig identity only). Throws DbcError. */
  sessionId(body: DbcRequest, nodeId: string): string;
  nodeState(nodeId: string): "online" | "rented";
  /** What `renterId`'s active rental of `nodeId` gives (whole node or some GPUs, caps), if it rents it. */
  limits?(renterId: string, nodeId: string): RentalLimits | undefined;
  /**
   * A call the master forwarded (it checked the signatures): the signers' nonces it names are burnt on
   * this node too, so a replay is refused here whatever the master remembers (a new leader of several
   * masters may not have the last nonces yet). Throws DbcError when one was used here before.
   */
  burnForwardedNonces?(uses: readonly SignedNonce[]): void;
  /**
   * True on a member when `renterId` rents `nodeId` by its master's terms, and those say nothing of
   * what grants give (a master of the earlier version): a direct call that creates or grows a task
   * cannot be checked against the rental.
   */
  grantUnknown?(renterId: string, nodeId: string): boolean;
}

export interface V1Deps {
  nodeId: string;
  nickname: () => string;
  version: string;
  vms: VmService;
  vmQueries: VmQueries;
  /** A task's data disks (`disk/*`). */
  disks: DiskService;
  /** A task's snapshots (`snapshot/*`). */
  snapshots: SnapshotService;
  /** The node's image cache and its image servers (`images/*`). */
  images: ImageCenter;
  renters: RenterAuth;
  nodeInfo: () => Promise<Record<string, unknown>>;
  /** Whether this node's operator cordoned it for maintenance (renters are told in its info). Absent: never. */
  maintenance?: () => MaintenanceState | null;
  /** DBC's free_memory: drops the page cache where the operator allows it (host/page-cache.ts). */
  freeMemory: () => Promise<"dropped" | "not allowed">;
  /** The address forwards listen on: a task's ssh_ip unless it is a wildcard. */
  forwardHost: string;
  /** The group: members to route to (on a master), forwarded calls to accept (on a member). */
  group?: V1Group;
  /** The group's LAN networks (`lan/*`, `network_name`). */
  lans?: V1Lans;
}

/** What the renter API needs of the LAN networks. */
export interface V1Lans {
  registry: LanRegistry;
  /** Whether this agent keeps the group's registry (a master, or an agent in no group); a member does not. */
  holdsRegistry: () => boolean;
}

/** What the renter API needs of the group. */
export interface V1Group {
  router: Pick<GroupRouter, "peer" | "forward" | "stream" | "verifyForwarded">;
  /** Every member of this master's group (none on a member), for `mining_nodes`. */
  peers(): GroupPeer[];
  /** On a member: its master's address (calls for other nodes are sent there); undefined elsewhere. */
  masterAddress?(): string | undefined;
  /** On a master of several (group/ha): the group's leader, to which a follower passes what it does not answer itself. */
  leader?: V1Leader;
}

/** What the renter API needs of a group's leader on a master of several (group/ha; server/routes/v1/follower.ts). */
export interface V1Leader {
  /** Whether another master leads now (or none does yet): this one is a follower. */
  follows(): boolean;
  /** Sends the call, its body as received (`bodyText`), to the leader and sends its reply. Throws ApiError `not_leader` when none can be reached. */
  passOn(req: FastifyRequest, reply: FastifyReply, bodyText: string): Promise<void>;
}
