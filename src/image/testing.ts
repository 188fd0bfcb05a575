import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { ImageLibrary } from "./library.js";
import { IMAGE_SERVER_PREFIX, imageServerRoutes, type ImageAction } from "./server-routes.js";

/** Test helpers of the image core: real folders, real files, a real server on 127.0.0.1. */

export async function tempDir(prefix = "batu-image-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes `sizeBytes` random bytes to `path` and returns them. */
export async function randomFile(path: string, sizeBytes: number): Promise<Buffer> {
  const data = randomBytes(sizeBytes);
  await writeFile(path, data);
  return data;
}

export interface TestServer {
  app: FastifyInstance;
  library: ImageLibrary;
  /** Base URL of the image routes, e.g. http://127.0.0.1:PORT/image-server/v1 */
  url: string;
  /** Every request's method and URL, in order. */
  requests: { method: string; url: string; status?: number }[];
  close: () => Promise<void>;
}

export async function startImageServer(
  dir: string,
  opts: { pieceBytes?: number; authorize?: (req: FastifyRequest, action: ImageAction) => void | Promise<void>; host?: string; port?: number } = {},
): Promise<TestServer> {
  const app = Fastify({ logger: false });
  const library = new ImageLibrary(dir, opts.pieceBytes ? { pieceBytes: opts.pieceBytes } : {});
  const requests: TestServer["requests"] = [];
  app.addHook("onResponse", async (req, reply) => {
    requests.push({ method: req.method, url: req.url, status: reply.statusCode });
  });
  await app.register(imageServerRoutes, { library, authorize: opts.authorize ?? (() => undefined) });
  const address = await app.listen({ host: opts.host ?? "127.0.0.1", port: opts.port ?? 0 });
  return { app, library, url: `${address}${IMAGE_SERVER_PREFIX}`, requests, close: () => app.close() };
}
