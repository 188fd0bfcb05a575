import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../api/errors.js";
import { bearerToken, secretEquals } from "../auth/secrets.js";
import { httpsUrlFor, privateTransport } from "./transport.js";

/**
 * Who may call a route: the operator (admin token), a metrics scraper ("metrics": the admin token or
 * the read-only metrics token; `GET /metrics` alone), or anyone at the hook's level ("public" routes
 * that authenticate in their service: joins by join token or proof, heartbeats by signature).
 */
export type RouteAuth = "admin" | "metrics" | "public";

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: RouteAuth;
    /**
     * "tls": another host may call it over TLS only (plain HTTP from loopback stays allowed). Every
     * route that takes a token is (admin, metrics); public routes that carry a secret or a member's traffic say so.
     */
    transport?: "tls";
  }
}

export interface Tokens {
  /** The admin token in force now (it can be rotated without a restart). */
  adminToken: () => string;
  /** The metrics token in force now: accepted on "metrics" routes, refused on every other. */
  metricsToken?: (() => string) | undefined;
  /** This agent's HTTPS port, named in the refusal of a plain call from another host. */
  tlsPort?: (() => number | undefined) | undefined;
}

/**
 * onRequest hook: checks the bearer token a route asks for (admin routes are the default), and that
 * a call from another host that carries the admin token, a join token or a member's traffic came over
 * TLS: it is refused over plain HTTP, before any token is compared, telling the caller where HTTPS is.
 */
export function authHook(tokens: Tokens) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (request.is404) return;
    // The API's own documentation is no secret: /docs (the OpenAPI UI and JSON) is public.
    const isDocs = request.routeOptions.url?.startsWith("/docs") ?? false;
    const config = request.routeOptions.config;
    const auth = isDocs ? "public" : (config.auth ?? "admin");
    if ((auth !== "public" || config.transport === "tls") && !privateTransport(request)) {
      throw new ApiError(
        "tls_required",
        `this call is served to other hosts over HTTPS only: use ${httpsUrlFor(request, tokens.tlsPort?.())} (the agent's certificate: batu tls)`,
      );
    }
    if (auth === "public") return;
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) throw new ApiError("unauthorized", "missing bearer token (Authorization: Bearer <token>)");
    const isAdmin = secretEquals(token, tokens.adminToken());
    // The metrics token opens "metrics" routes only: elsewhere it is as wrong as any other token.
    const metricsToken = auth === "metrics" ? tokens.metricsToken?.() : undefined;
    const isMetrics = metricsToken !== undefined && secretEquals(token, metricsToken);
    if (!isAdmin && !isMetrics) throw new ApiError("unauthorized", "wrong bearer token");
  };
}
