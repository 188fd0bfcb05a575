import type { FastifyPluginAsync } from "fastify";
import { DbcRequest } from "../../../api/v1/request.js";
import { ok } from "../../../api/v1/envelope.js";
import type { V1Deps } from "./deps.js";
import { targetNode } from "./target.js";

/** `mining_nodes`: node info (no identity needed) and the renter's session id. */
export const nodeRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  app.post<{ Body: DbcRequest }>(
    "/mining_nodes",
    { schema: { summary: "Nodes known here (empty peer_nodes_list), or one node's info", tags: ["dbc"], body: DbcRequest } },
    async (req) => {
      if (req.body.peer_nodes_list.length === 0) {
        return ok({
          mining_nodes: [{ node_id: deps.nodeId, name: deps.nickname(), version: deps.version, state: deps.renters.nodeState(deps.nodeId) }],
        });
      }
      targetNode(req.body, deps);
      return ok(await deps.nodeInfo());
    },
  );

  app.post<{ Body: DbcRequest }>(
    "/mining_nodes/session_id",
    {
      schema: {
        summary: "The renter's session id (wallet or multisig identity only)",
        description: "Created once per renter and kept; hand it with its signature (session_id_sign) to a second user.",
        tags: ["dbc"],
        body: DbcRequest,
      },
    },
    async (req) => ok({ session_id: deps.renters.sessionId(req.body, targetNode(req.body, deps)) }),
  );
};
