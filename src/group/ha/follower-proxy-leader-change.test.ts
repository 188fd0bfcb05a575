import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { loadTlsIdentity } from "../../auth/tls-identity.js";
import { ApiError } from "../../api/errors.js";
import { FollowerProxy, type LeaderEndpoint } from "./follower-proxy.js";

/** Listens on a free loopback port; resolves with it. */
const listen = (server: TlsServer | HttpsServer) =>
  new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));

describe("FollowerProxy: the leader changes while calls wait on the last one", () => {
  let dir: string;
  /** A leader whose host died: its connection stays open and nothing ever answers (no reset either). */
  let silent: TlsServer;
  const silentSockets: TLSSocket[] = [];
  let live: HttpsServer;
  let app: FastifyInstance;
  let proxy: FollowerProxy;
  let leader: LeaderEndpoint | undefined;
  let liveAt: LeaderEndpoint;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "batu-follower-proxy-"));
    // Every master presents the group's certificate: both "leaders" here present this one.
    const identity = await loadTlsIdentity(dir, "ab".repeat(32));
    silent = createTlsServer({ key: identity.key, cert: identity.cert }, (socket) => {
      silentSockets.push(socket);
      socket.resume();
    });
    live = createHttpsServer({ key: identity.key, cert: identity.cert }, (req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ from: "the new leader" }));
    });
    leader = { host: "127.0.0.1", tlsPort: await listen(silent) };
    liveAt = { host: "127.0.0.1", tlsPort: await listen(live) };
    proxy = new FollowerProxy(identity.sha256, () => leader);
    app = Fastify();
    app.addHook("onRequest", async (req, reply) => {
      if (await proxy.handle(req, reply)) return reply;
    });
    app.setErrorHandler((e, _req, reply) => reply.code(e instanceof ApiError ? e.status : 500).send({ code: e instanceof ApiError ? e.code : "internal", message: (e as Error).message }));
    await app.listen({ host: "127.0.0.1", port: 0 });
  });

  afterAll(async () => {
    proxy?.close();
    await app?.close();
    for (const s of silentSockets) s.destroy();
    await new Promise((r) => silent?.close(r));
    await new Promise((r) => live?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("a call waiting on a leader gone fails at once with not_leader when the election names another; the next call reaches the new one", async () => {
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/common/rent/grant`;
    const post = () => fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    const waiting = post();
    // The call reached the silent leader (its connection is open) and waits for an answer.
    for (let i = 0; i < 100 && silentSockets.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(silentSockets.length).toBe(1);
    const changedAt = Date.now();
    leader = liveAt;
    proxy.leaderChanged();
    const failed = await waiting;
    expect(Date.now() - changedAt).toBeLessThan(5_000);
    expect(failed.status).toBe(503);
    expect(await failed.json()).toMatchObject({ code: "not_leader" });
    const next = await post();
    expect(next.status).toBe(200);
    expect(await next.json()).toEqual({ from: "the new leader" });
  }, 15_000);
});
