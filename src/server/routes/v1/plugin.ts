import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { V1Deps } from "./deps.js";
import { dbcErrorHandler } from "./errors.js";
import { parseDbcRequest } from "../../../api/v1/request.js";
import { forwardedNonces } from "./forwarded-nonces.js";
import { nodeRoutes } from "./nodes.js";
import { taskRoutes } from "./tasks.js";
import { diskRoutes } from "./disks.js";
import { imageRoutes } from "./images.js";
import { snapshotRoutes } from "./snapshots.js";
import { eventRoutes } from "./events.js";
import { lanRoutes } from "./lan.js";
import { routeToMember } from "./route-to-member.js";
import { routeOnHaMaster } from "./follower.js";
import { forwardedRenter, setForwardedRenter } from "./target.js";
import { ForwardVerifier, NO_BODY_TEXT } from "../../../group/forward.js";
import { DbcError } from "../../../api/v1/envelope.js";
import { privateTransport } from "../../transport.js";

/**
 * Seed 001, DBC's client API, under `/api/v1`: its own identities (signatures, sessions; no admin
 * token), its own envelope and errcodes, and DBC's answers for unknown paths and methods.
 */
export const v1Routes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  app.addHook("onRoute", (route) => {
    route.config = { ...(route.config ?? {}), auth: "public" };
  });
  app.setErrorHandler(dbcErrorHandler);
  const group = deps.group;
  // The body text of each forwarded call, as received: what the master signed. On a master of
  // several, of every call: what a follower passes to the leader.
  const bodyTexts = new WeakMap<FastifyRequest, string>();
  // DBC's node parses every body as JSON whatever its Content-Type (DBC's clients and `curl -d` send
  // none or a form type): so does /api/v1, with Fastify's own JSON parser (same limits, errors and
  // prototype-poisoning refusal), keeping the text of forwarded calls only.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (req, body, done) => {
    if (group && (group.leader || ForwardVerifier.isForwarded(req.headers))) bodyTexts.set(req, body as string);
    parseJson(req, body as string, done);
  });
  if (group) {
    // A call forwarded by this member's master: checked on the body text as sent, before any other hook.
    app.addHook("preValidation", async (req) => {
      if (!ForwardVerifier.isForwarded(req.headers)) return;
      // A master calls its members over TLS: its calls' replies (tasks, passwords) never cross the LAN in clear.
      if (!privateTransport(req)) throw new DbcError(-3, "check authority failed: forwarded call refused: not over TLS");
      const renter = group.router.verifyForwarded(req.headers, req.method, req.url, bodyTexts.get(req) ?? NO_BODY_TEXT);
      if (renter) setForwardedRenter(req, renter);
    });
  }
  // DBC's client checks the body's shape field by field with its own texts; so do we, before the schema.
  app.addHook("preValidation", async (req) => {
    if (req.method !== "POST") return;
    // Replays are refused on the node itself too: the nonces a forwarded call names are burnt here.
    const nonces = forwardedRenter(req) !== undefined ? forwardedNonces(req.body) : [];
    req.body = parseDbcRequest(req.body);
    if (nonces.length > 0) deps.renters.burnForwardedNonces?.(nonces);
  });
  if (group) {
    // A follower of several masters answers what it only routes to a member, and passes the rest to the leader.
    const leader = group.leader;
    app.addHook("preHandler", leader ? routeOnHaMaster(deps, group, leader, (req) => bodyTexts.get(req)) : routeToMember(deps, group));
  }
  app.setNotFoundHandler((req, reply) => {
    if (req.method !== "POST") return void reply.status(400).send({ errcode: -32600, message: "only support POST request" });
    return void reply.status(404).send({ errcode: -32601, message: `not support uri:${req.url.split("?")[0]}` });
  });
  await app.register(nodeRoutes, { deps });
  await app.register(taskRoutes, { deps });
  await app.register(diskRoutes, { deps });
  await app.register(snapshotRoutes, { deps });
  await app.register(imageRoutes, { deps });
  await app.register(eventRoutes, { deps });
  await app.register(lanRoutes, { deps });
};
