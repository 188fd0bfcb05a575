import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { FastifyPluginAsync } from "fastify";
import fastifyStatic from "@fastify/static";

/** Where `vite build` writes the console (dist/web), from src/server/console and dist/server/console alike. */
export const CONSOLE_ROOT = resolve(import.meta.dirname, "../../../dist/web");

/**
 * The web console's files at `/` (built by `npm run build`). The page is public: every route this
 * plugin registers is marked `auth: "public"`, while the data it shows comes from the API with a
 * token or a renter's signature. Files are listed once at start (no wildcard route), so an unknown
 * path stays the API's 404; each is served gzip- or brotli-compressed when the build wrote those.
 */
export const consoleStatic: FastifyPluginAsync<{ root?: string }> = async (app, opts) => {
  const root = opts.root ?? CONSOLE_ROOT;
  app.addHook("onRoute", (route) => {
    route.config = { ...(route.config as object), auth: "public" } as typeof route.config;
  });
  if (!existsSync(resolve(root, "index.html"))) {
    app.get("/", { schema: { hide: true } }, async (_req, reply) =>
      reply.status(503).type("text/plain").send("the web console is not built: run `npm run build` (it runs `vite build`)"),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root,
    wildcard: false,
    preCompressed: true,
    cacheControl: false,
    // Hashed file names under assets/ never change; the page itself is asked for again each time.
    setHeaders: (res, path) => {
      res.setHeader("cache-control", path.includes("/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
    },
  });
};
