import type { FastifyPluginAsync } from "fastify";
import { percentText } from "../../../lib/units.js";
import { Type } from "@sinclair/typebox";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { V1Deps } from "./deps.js";
import { forwardedRenter, resolveTarget } from "./target.js";
import { NO_BODY_TEXT } from "../../../group/forward.js";
import { DbcError } from "../../../api/v1/envelope.js";
import { MAX_EVENT_STREAMS_PER_RENTER } from "../../limits.js";
import type { TransferState } from "../../../image/center.js";

/**
 * `GET /api/v1/events`: task state changes as server-sent events, so clients need not poll (batu
 * addition): `event: task` (status, readiness), `event: operation` (a long operation's progress and
 * end) and `event: image` (the node's image transfers). The identity goes in the query: `node`, and `session_id` + `session_id_sign`, or
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
  // Streams open per renter on this agent (here, or relayed to a member): each holds a socket.
  const open = new Map<string, number>();
  const hold = (renter: string): (() => void) => {
    const n = open.get(renter) ?? 0;
    if (n >= MAX_EVENT_STREAMS_PER_RENTER) {
      throw new DbcError(-3, `too many event streams: at most ${MAX_EVENT_STREAMS_PER_RENTER} open at once per renter`, 429);
    }
    open.set(renter, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (open.get(renter) ?? 1) - 1;
      if (left > 0) open.set(renter, left);
      else open.delete(renter);
    };
  };
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
        const release = hold(renter);
        req.raw.on("close", release);
        let upstream;
        try {
          // The renter's credentials stop here (see route-to-member.ts): the member gets the node alone.
          const url = `/api/v1/events?${new URLSearchParams({ node: target.nodeId })}`;
          upstream = await deps.group.router.stream(target.peer, { method: "GET", url, bodyText: NO_BODY_TEXT, renter });
        } catch (e) {
          release();
          throw e;
        }
        reply.hijack();
        reply.raw.writeHead(upstream.statusCode ?? 502, { "content-type": upstream.headers["content-type"] ?? "text/event-stream", "cache-control": "no-cache" });
        upstream.pipe(reply.raw);
        req.raw.on("close", () => upstream.destroy());
        return;
      }
      const owner = forwardedRenter(req) ?? deps.renters.authorize(body, target.nodeId);
      const release = hold(owner);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      res.write(": batu task events\n\n");
      // The renter's VMs, by their id here, and the task id it knows each by.
      const mine = new Map(deps.vmQueries.listFor(owner).map((v) => [v.id, v.taskId]));
      const off = deps.vmQueries.onChange((c) => {
        if (!mine.has(c.id)) {
          const vm = deps.vmQueries.find(c.id);
          if (vm?.owner !== owner) return;
          mine.set(c.id, vm.taskId);
        }
        res.write(`event: task\ndata: ${JSON.stringify({ task_id: mine.get(c.id), status: c.status, ready: c.ready })}\n\n`);
        if (c.status === "deleted") mine.delete(c.id);
      });
      // Long operations on the renter's tasks: progress while they copy, and their end.
      const offOperations = deps.vmQueries.onOperation((op) => {
        if (!mine.has(op.vmId)) return;
        const progress = op.progress === null ? null : percentText(op.progress);
        res.write(`event: operation\ndata: ${JSON.stringify({ operation_id: op.id, task_id: op.taskId, action: op.action, state: op.state, progress, error: op.error })}\n\n`);
      });
      // Image transfers of this node (shared by its renters, as DBC's progress calls are): each whole percent, and the end.
      const onTransfer = (t: TransferState) => {
        const image = { image_filename: t.name, direction: t.direction, image_server: t.serverId, status: t.status, progress: percentText(t.fraction), error: t.error };
        res.write(`event: image\ndata: ${JSON.stringify(image)}\n\n`);
      };
      deps.images.on("transfer", onTransfer);
      const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
      req.raw.on("close", () => {
        clearInterval(keepAlive);
        off();
        offOperations();
        deps.images.off("transfer", onTransfer);
        release();
      });
    },
  );
};
