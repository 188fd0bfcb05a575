import { Readable } from "node:stream";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import cors from "@fastify/cors";
import formbody from "@fastify/formbody";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import websocket from "@fastify/websocket";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { ErrorReply, OkReply } from "../api/common.js";
import { VERSION } from "../lib/version.js";
import { ApiError } from "../api/errors.js";
import { deeperThan } from "../api/v1/request.js";

/** How deep any request body may nest (DBC's and seed 000's bodies are two or three levels). */
const MAX_BODY_DEPTH = 64;
import { authHook } from "./auth.js";
import type { AppDeps } from "./deps.js";
import { errorHandler } from "./errors.js";
import { RequestLog } from "./request-log.js";
import { accessLoggerOf } from "../lib/access-log.js";
import { SERVER_LIMITS } from "./limits.js";
import { commonRoutes } from "./routes/host/common.js";
import { maintenanceRoutes } from "./routes/host/maintenance.js";
import { groupRoutes } from "./routes/host/group.js";
import { vmRoutes } from "./routes/host/vm.js";
import { imageRoutes } from "./routes/host/images.js";
import { rentRoutes } from "./routes/host/rent.js";
import { v1Routes } from "./routes/v1/plugin.js";
import { installMetrics } from "../metrics/plugin.js";
import { vmEventRoutes } from "./routes/host/vm-events.js";
import { consoleStatic } from "./console/static.js";
import { vncProxyRoutes } from "./console/vnc-proxy.js";


/** Builds the agent's HTTP app. Never listens: the caller (agent or test) decides. */
export async function build(deps: AppDeps): Promise<FastifyInstance> {
  const requestTimeoutMs = deps.limits?.requestTimeoutMs ?? SERVER_LIMITS.requestTimeoutMs;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: new RequestLog(accessLoggerOf(deps.log)),
    bodyLimit: 1024 * 1024,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: SERVER_LIMITS.keepAliveTimeoutMs,
    connectionTimeout: SERVER_LIMITS.idleTimeoutMs,
    http: {
      headersTimeout: Math.min(SERVER_LIMITS.headersTimeoutMs, requestTimeoutMs),
      connectionsCheckingInterval: SERVER_LIMITS.checkingIntervalMs,
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.server.maxConnections = SERVER_LIMITS.maxConnections;
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ message: `no route for ${req.method} ${req.url.split("?")[0]}` });
  });
  // Seed 000's POSTs carry no body at all in places: treat an absent body as an empty object.
  // No API body nests deeply; one that does would only overflow the stack of whoever serializes it.
  app.addHook("preValidation", async (req) => {
    if (req.method === "POST" && (req.body === undefined || req.body === null)) req.body = {};
    // A stream (an image upload, parsed as application/octet-stream) is bytes, not a tree.
    if (!(req.body instanceof Readable) && deeperThan(req.body, MAX_BODY_DEPTH)) throw new ApiError("bad_request", `body: nested more than ${MAX_BODY_DEPTH} levels deep`);
  });
  // Browser pages of the origins the operator lists (conf/config.json `cors_origins`, read at each
  // request) may call the agent; a preflight is answered before authentication, as browsers send it
  // without credentials. The calls themselves still need their token or identity.
  await app.register(cors, {
    origin: (origin, done) => done(null, origin !== undefined && (deps.systemConfig().cors_origins ?? []).includes(origin)),
    methods: ["GET", "POST", "OPTIONS"],
    allowedHeaders: ["authorization", "content-type"],
    maxAge: 600,
  });
  if (deps.ha) {
    const ha = deps.ha;
    // Before authentication: the leader checks the caller's token or identity itself.
    app.addHook("onRequest", async (req, reply) => {
      if (await ha.route(req, reply)) return reply;
    });
    // No reply tells of a change the group might lose with this master.
    app.addHook("onSend", async (_req, _reply, payload) => {
      await ha.settled();
      return payload;
    });
  }
  app.addHook("onRequest", authHook(deps));

  await app.register(formbody);
  // WebSocket upgrades go through the routes and hooks above like any request (the console's VNC).
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
  // Seed 000's control endpoint took a command string; accept text so we can refuse it with a reason.
  app.addContentTypeParser("text/plain", { parseAs: "string", bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));
  await app.register(swagger, {
    openapi: {
      info: {
        title: "batu agent",
        version: VERSION,
        description:
          "The host API of seed 000 (`/common`, `/master`, `/slave`): every route needs " +
          "`Authorization: Bearer <admin token>` (conf/admin.token) unless it says otherwise. " +
          "The renter API of seed 001 (DBC's dbc_client, `/api/v1`): POST with `peer_nodes_list`, `additional` " +
          "and a wallet, multisig or session identity; replies `{errcode, message}`.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { docExpansion: "list" } });
  app.addSchema(ErrorReply);
  app.addSchema(OkReply);
  // Before the routes: its request hook counts each of them.
  installMetrics(app, deps);

  await app.register(commonRoutes, { deps });
  if (deps.maintenance) await app.register(maintenanceRoutes, { deps, maintenance: deps.maintenance });
  await app.register(groupRoutes, { deps });
  await app.register(vmRoutes, { deps });
  await app.register(rentRoutes, { deps });
  await app.register(imageRoutes, { deps });
  await app.register(v1Routes, { prefix: "/api/v1", deps: deps.v1 });
  // The web console: its page (public), its event stream and its VNC proxy (see docs/console.md).
  await app.register(vmEventRoutes, { deps });
  await app.register(vncProxyRoutes, { deps: { vmQueries: deps.vmQueries, forwardHost: deps.v1.forwardHost } });
  await app.register(consoleStatic);
  return app;
}

export { VERSION };
