import type { FastifyPluginAsync } from "fastify";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { V1Deps } from "./deps.js";
import { targetNode } from "./target.js";

/**
 * `GET /api/v1/events`: task state changes as server-sent events, so clients need not poll (batu
 * addition). The identity goes in the query: `node`, and `session_id` + `session_id_sign`, or
 * `wallet` + `nonce` + `sign`. A renter sees only its own tasks.
 */
export const eventRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  app.get<{ Querystring: Record<string, string> }>(
    "/events",
    { schema: { summary: "Task state changes, as server-sent events", tags: ["dbc"] } },
    async (req, reply) => {
      const q = req.query;
      const body = {
        peer_nodes_list: q.node ? [q.node] : [],
        additional: {},
        ...(q.session_id ? { session_id: q.session_id, session_id_sign: q.session_id_sign ?? "" } : {}),
        ...(q.wallet ? { wallet: q.wallet, nonce: q.nonce ?? "", sign: q.sign ?? "" } : {}),
      } as DbcRequest;
      const owner = deps.renters.authorize(body, targetNode(body, deps));
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      res.write(": batu task events\n\n");
      const mine = new Set(deps.vms.listFor(owner).map((v) => v.id));
      const off = deps.vms.onChange((c) => {
        if (!mine.has(c.id)) {
          if (deps.vms.listFor(owner).every((v) => v.id !== c.id)) return;
          mine.add(c.id);
        }
        res.write(`event: task\ndata: ${JSON.stringify({ task_id: c.id, status: c.status, ready: c.ready })}\n\n`);
        if (c.status === "deleted") mine.delete(c.id);
      });
      const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
      req.raw.on("close", () => {
        clearInterval(keepAlive);
        off();
      });
    },
  );
};
