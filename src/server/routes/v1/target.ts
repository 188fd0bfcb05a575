import type { FastifyRequest } from "fastify";
import { DbcError } from "../../../api/v1/envelope.js";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { GroupPeer } from "../../../group/master-role.js";
import type { V1Deps } from "./deps.js";

/** Where a request's node runs: here, or on a member of this master's group. */
export type Target = { kind: "self"; nodeId: string } | { kind: "member"; nodeId: string; peer: GroupPeer };

/**
 * The node a request is for: `peer_nodes_list[0]`, as DBC reads it. The one place that maps a node
 * id to where it runs: this agent, or (on a master) one of its members.
 */
export function resolveTarget(body: DbcRequest, deps: V1Deps): Target {
  const nodeId = body.peer_nodes_list[0];
  if (!nodeId) throw new DbcError(-25, "peer_nodeid is empty", 400);
  if (nodeId === deps.nodeId) return { kind: "self", nodeId };
  const peer = deps.group?.router.peer(nodeId);
  if (peer) return { kind: "member", nodeId, peer };
  // A member forwards nothing: the renter is sent to the master, which routes to every node.
  const master = deps.group?.masterAddress?.();
  if (master !== undefined) {
    throw new DbcError(-32701, `create node request failed: node ${nodeId} is not served here: this node is a member of the group of master ${master}; send calls for other nodes to the master`, 400);
  }
  throw new DbcError(-32701, `create node request failed: node ${nodeId} is not served here`, 400);
}

/** The node of a request handled on this agent itself (member targets were forwarded before handlers run). */
export function targetNode(body: DbcRequest, deps: V1Deps): string {
  const t = resolveTarget(body, deps);
  if (t.kind === "member") {
    throw new DbcError(-32701, `create node request failed: node ${t.nodeId} is a group member; this call is not routed, make it on the member`, 400);
  }
  return t.nodeId;
}

// The renter id a verified forwarded call carries, by request (set by the v1 plugin's hook).
const forwardedRenters = new WeakMap<FastifyRequest, string>();

export function setForwardedRenter(req: FastifyRequest, renter: string): void {
  forwardedRenters.set(req, renter);
}

/** The renter the master authenticated for this forwarded call; undefined for a direct call. */
export function forwardedRenter(req: FastifyRequest): string | undefined {
  return forwardedRenters.get(req);
}

/**
 * Whom a call to this agent's own node acts for: the renter its master vouched for (a forwarded
 * call), else the one its own identity proves against this node's rental. Proven once per request:
 * a signed nonce is good for one check, however many times a handler asks.
 */
export function actingRenter(req: FastifyRequest<{ Body: DbcRequest }>, deps: V1Deps): string {
  const known = forwardedRenter(req) ?? provenRenters.get(req);
  if (known !== undefined) return known;
  const renter = deps.renters.authorize(req.body, targetNode(req.body, deps));
  provenRenters.set(req, renter);
  return renter;
}

// The renter each direct call proved, by request.
const provenRenters = new WeakMap<FastifyRequest, string>();
