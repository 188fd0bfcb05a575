import type { FastifyPluginAsync } from "fastify";
import { DbcRequest } from "../../../api/v1/request.js";
import { ok } from "../../../api/v1/envelope.js";
import type { V1Deps } from "./deps.js";
import { actingRenter, resolveTarget, targetNode } from "./target.js";

/** This node's maintenance, as renters see it in its info (batu addition): only while cordoned. */
function maintenanceOf(deps: V1Deps): { maintenance?: { since: string; reason: string; running_tasks_shut_down: boolean } } {
  const m = deps.maintenance?.();
  return m ? { maintenance: { since: m.since, reason: m.reason, running_tasks_shut_down: m.drained } } : {};
}

/** `mining_nodes`: node info (no identity needed), the renter's session id, and DBC's free_memory. */
export const nodeRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  app.post<{ Body: DbcRequest }>(
    "/mining_nodes",
    { schema: { summary: "Nodes known here (empty peer_nodes_list), or one node's info", tags: ["dbc"], body: DbcRequest } },
    async (req) => {
      if (req.body.peer_nodes_list.length === 0) {
        // On a master: every node of the group; a dead member shows as offline, never hidden.
        const members = (deps.group?.peers() ?? []).map((p) => ({
          node_id: p.nodeId,
          name: p.nickname,
          version: p.capacity?.version ?? "",
          state: p.state === "dead" ? "offline" : deps.renters.nodeState(p.nodeId),
        }));
        return ok({
          mining_nodes: [
            { node_id: deps.nodeId, name: deps.nickname(), version: deps.version, state: deps.renters.nodeState(deps.nodeId), ...maintenanceOf(deps) },
            ...members,
          ],
        });
      }
      targetNode(req.body, deps);
      return ok({ ...(await deps.nodeInfo()), ...maintenanceOf(deps) });
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
    // Answered here even for a member's node: session ids live with the rental ledger, on the master.
    async (req) => ok({ session_id: deps.renters.sessionId(req.body, resolveTarget(req.body, deps).nodeId) }),
  );

  app.post<{ Body: DbcRequest }>(
    "/mining_nodes/free_memory",
    {
      schema: {
        summary: "Drop the node's page cache (DBC's free_memory), where its operator allows it",
        description:
          "Answers ok as DBC does. The cache is dropped only when conf/config.json has allow_drop_caches: true; " +
          "otherwise nothing on the host is touched (the node's log says which).",
        tags: ["dbc"],
        body: DbcRequest,
      },
    },
    async (req) => {
      const renter = actingRenter(req, deps);
      const done = await deps.freeMemory();
      req.log.info({ renter, done }, "free_memory");
      return ok("ok");
    },
  );
};
