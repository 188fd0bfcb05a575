import type { DbcRequest } from "../../../api/v1/request.js";
import type { VmService } from "../../../vm/service.js";

/** What the renter API needs to know who is calling. */
export interface RenterAuth {
  /** Authenticates the request for `nodeId` (rental active, signature or session valid); the renter's id. Throws DbcError. */
  authorize(body: DbcRequest, nodeId: string): string;
  /** The renter's session id (wallet or multisig identity only). Throws DbcError. */
  sessionId(body: DbcRequest, nodeId: string): string;
  nodeState(nodeId: string): "online" | "rented";
}

export interface V1Deps {
  nodeId: string;
  nickname: () => string;
  version: string;
  vms: VmService;
  renters: RenterAuth;
  nodeInfo: () => Promise<Record<string, unknown>>;
  /** The address forwards listen on: a task's ssh_ip unless it is a wildcard. */
  forwardHost: string;
}
