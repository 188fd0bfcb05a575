import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { V1Deps } from "./deps.js";
import { forwardedRenter, resolveTarget } from "./target.js";
import { NO_BODY_TEXT } from "../../../group/forward.js";

/**
 * `GET /api/v1/events`: task state changes as server-sent events, so clients need not poll (batu
 * addition). The identity goes in the query: `node`, and `session_id` + `session_id_sign`, or
 * `wallet` + `nonce` + `sign`. A renter sees only its own tasks. On a master, the stream of a
 * member's node is authenticated here (the ledger is here) and relayed from that member.
 */
/** The identity in the query: each field once (a repeated one is refused, never taken as a list). */
const field = (description: string) => Type.Optional(Type.String({ maxLength: 256, description }));
const EventsQuery = Type.Object({
  node: field("The node whose tasks to follow"),
  session_id: field("A renter's session id"),
  session_id_sign: field("Its signature by the renter"),
  wallet: field("Or a wallet"),
  nonce: field("with a fresh nonce"),
  sign: field("and its signature"),
});

export const eventRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  app.get<{ Querystring: Record<string, string | undefined> }>(
    "/events",
    { schema: { summary: "Task state changes, as server-sent events", tags: ["dbc"], querystring: EventsQuery } },
    async (req, reply) => {
      const q = req.query;
      const body = {
        peer_nodes_list: q.node ? [q.node] : [],
        additional: {},
        ...(q.session_id ? { session_id: q.session_id, session_id_sign: q.session_id_sign ?? "" } : {}),
        ...(q.wallet ? { wallet: q.wallet, nonce: q.nonce ?? "", sign: q.sign ?? "" } : {}),
      } as DbcRequest;
      const target = resolveTarget(body, deps);
      if (target.kind === "member" && deps.group) {
        const renter = deps.renters.authorize(body, target.nodeId);
        const upstream = await deps.group.router.stream(target.peer, { method: "GET", url: req.url, bodyText: NO_BODY_TEXT, renter });
        reply.hijack();
        reply.raw.writeHead(upstream.statusCode ?? 502, { "content-type": upstream.headers["content-type"] ?? "text/event-stream", "cache-control": "no-cache" });
        upstream.pipe(reply.raw);
        req.raw.on("close", () => upstream.destroy());
        return;
      }
      const owner = forwardedRenter(req) ?? deps.renters.authorize(body, target.nodeId);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      res.write(": batu task events\n\n");
      const mine = new Set(deps.vmQueries.listFor(owner).map((v) => v.id));
      const off = deps.vmQueries.onChange((c) => {
        if (!mine.has(c.id)) {
          if (!deps.vmQueries.owns(owner, c.id)) return;
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
