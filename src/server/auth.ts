import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../api/errors.js";
import { bearerToken, secretEquals } from "../auth/secrets.js";

/** Who may call a route: the operator (admin token), a joining member (join token), or anyone. */
export type RouteAuth = "admin" | "join" | "public";

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

export interface Tokens {
  adminToken: string;
  joinToken: string;
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
    const ok =
      secretEquals(token, tokens.adminToken) || (auth === "join" && secretEquals(token, tokens.joinToken));
    if (!ok) throw new ApiError("unauthorized", "wrong bearer token");
  };
}
