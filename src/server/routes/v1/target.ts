import { DbcError } from "../../../api/v1/envelope.js";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { V1Deps } from "./deps.js";

/**
 * The node a request is for: `peer_nodes_list[0]`, as DBC reads it. The one place that maps a
 * node id to where it runs; for now only this node (routing to group members comes with the group).
 */
export function targetNode(body: DbcRequest, deps: V1Deps): string {
  const nodeId = body.peer_nodes_list[0];
  if (!nodeId) throw new DbcError(-25, "peer_nodeid is empty", 400);
  if (nodeId !== deps.nodeId) throw new DbcError(-32701, `create node request failed: node ${nodeId} is not served here`, 400);
  return nodeId;
}
