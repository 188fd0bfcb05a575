import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../api/errors.js";
import { bearerToken, secretEquals } from "../auth/secrets.js";

/**
 * Who may call a route: the operator (admin token), or anyone at the hook's level ("public" routes
 * that authenticate in their service: joins by join token or proof, heartbeats by signature).
 */
export type RouteAuth = "admin" | "public";

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

export interface Tokens {
  adminToken: string;
}

/** onRequest hook: checks the bearer token a route asks for; admin routes are the default. */
export function authHook(tokens: Tokens) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (request.is404) return;
    // The API's own documentation is no secret: /docs (the OpenAPI UI and JSON) is public.
    const isDocs = request.routeOptions.url?.startsWith("/docs") ?? false;
    const auth = isDocs ? "public" : (request.routeOptions.config.auth ?? "admin");
    if (auth === "public") return;
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) throw new ApiError("unauthorized", "missing bearer token (Authorization: Bearer <token>)");
    if (!secretEquals(token, tokens.adminToken)) throw new ApiError("unauthorized", "wrong bearer token");
  };
}
