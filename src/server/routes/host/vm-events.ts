import type { FastifyPluginAsync } from "fastify";
import type { VmQueries } from "../../../vm/queries.js";
import { toItem } from "./vm.js";

/** Operator event streams open at once on this agent: each holds a socket and a listener. */
export const MAX_OPERATOR_EVENT_STREAMS = 16;

/**
 * `GET /common/vm/events` (admin token): this host's VMs as server-sent events, so the console never
 * polls. First `event: list` (the whole list, as `/common/vm/list` has it), then `event: vm` with a
 * VM's item each time its status or readiness changes, and `event: deleted` (`{id}`) when one goes.
 * The changes are the runtime's (`VmQueries.onChange`), the same ones `/api/v1/events` relays to renters.
 */
export const vmEventRoutes: FastifyPluginAsync<{ deps: { vmQueries: VmQueries } }> = async (app, { deps }) => {
  let open = 0;
  app.get(
    "/common/vm/events",
    {
      // A HEAD would open a stream with no body to carry it, held until the client leaves.
      exposeHeadRoute: false,
      schema: {
        summary: "This host's VMs as server-sent events: the list, then each change and deletion",
        description:
          "`event: list` (data: the VM list), then `event: vm` (data: one VM item) on each status or readiness " +
          "change and `event: deleted` (data: `{id}`). A comment line every 15 s keeps the connection open.",
        tags: ["vm"],
      },
    },
    async (req, reply) => {
      if (open >= MAX_OPERATOR_EVENT_STREAMS) {
        return reply.status(429).send({ message: `too many event streams: at most ${MAX_OPERATOR_EVENT_STREAMS} open at once` });
      }
      open++;
      reply.hijack();
      const res = reply.raw;
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      // Subscribed before the list is read: a change between the two is sent after it, never lost.
      const off = deps.vmQueries.onChange((c) => {
        if (c.status === "deleted") return send("deleted", { id: c.id });
        const vm = deps.vmQueries.find(c.id);
        if (vm) send("vm", { ...toItem(vm), status: c.status, ready: c.ready });
      });
      send("list", deps.vmQueries.list().map(toItem));
      const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
      req.raw.on("close", () => {
        clearInterval(keepAlive);
        off();
        open--;
      });
    },
  );
};
