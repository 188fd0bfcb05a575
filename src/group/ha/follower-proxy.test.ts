import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { loadTlsIdentity } from "../../auth/tls-identity.js";
import { FollowerProxy, goesToLeader } from "./follower-proxy.js";

/** What the leader (a real TLS server with the group's certificate) received. */
let received: { method: string; url: string; length: string | undefined; body: string }[] = [];
let leader: Server;
let follower: FastifyInstance;
let proxy: FollowerProxy;

beforeAll(async () => {
  const group = await loadTlsIdentity(mkdtempSync(join(tmpdir(), "batu-ha-proxy-")), "a".repeat(64));
  leader = createServer({ key: group.key, cert: group.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ method: req.method!, url: req.url!, length: req.headers["content-length"], body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(201, { "content-type": "application/json", "x-from": "leader" });
      res.end('{"errcode":0,"message":"from the leader"}');
    });
  });
  await new Promise<void>((r) => leader.listen(0, "127.0.0.1", r));
  proxy = new FollowerProxy(group.sha256, () => ({ host: "127.0.0.1", tlsPort: (leader.address() as AddressInfo).port }));
  follower = Fastify();
  // As the agent does: what goes on as it arrives, in onRequest; a renter call once its body is read.
  follower.addHook("onRequest", async (req, reply) => {
    if (await proxy.handle(req, reply)) return reply;
  });
  follower.removeAllContentTypeParsers();
  follower.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));
  follower.post("/api/v1/*", async (req, reply) => {
    await proxy.relayRead(req, reply, req.body as string);
    return reply;
  });
  follower.post("/master/*", async () => ({ answered: "here" }));
  await follower.ready();
});
afterAll(async () => {
  await follower.close();
  proxy.close();
  leader.closeAllConnections();
  await new Promise((r) => leader.close(r));
});

describe("a follower passing calls to its leader", () => {
  it("sends a renter call's body as it was read, its length counted in bytes, and relays the leader's answer", async () => {
    received = [];
    const body = '{"peer_nodes_list":["n"],"additional":{"note":"größer — 大"}}';
    const r = await follower.inject({ method: "POST", url: "/api/v1/mining_nodes/session_id?x=1", payload: body, headers: { "content-type": "application/json" } });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.headers["x-from"]).toBe("leader");
    expect(r.json()).toEqual({ errcode: 0, message: "from the leader" });
    expect(received).toEqual([{ method: "POST", url: "/api/v1/mining_nodes/session_id?x=1", length: String(Buffer.byteLength(body)), body }]);
  });

  it("streams a write of the host API on as it arrives", async () => {
    received = [];
    const r = await follower.inject({ method: "POST", url: "/master/group/remove", payload: { node_id: "n" } });
    expect(r.json()).toEqual({ errcode: 0, message: "from the leader" });
    expect(received.map((x) => [x.url, JSON.parse(x.body)])).toEqual([["/master/group/remove", { node_id: "n" }]]);
  });

  it("refuses the member protocol with not_leader, naming the leader", async () => {
    received = [];
    const r = await follower.inject({ method: "POST", url: "/master/group/heartbeat", payload: {} });
    expect(r.statusCode).toBe(503);
    expect(r.json().message).toContain("its leader is at 127.0.0.1");
    expect(received).toHaveLength(0);
  });
});

describe("goesToLeader: what a follower passes on as it arrives", () => {
  it("every write of the host API and every renter call but a POST, which is decided once its body is read", () => {
    expect(goesToLeader("POST", "/api/v1/tasks")).toBe(false);
    expect(goesToLeader("POST", "/api/v1?x")).toBe(false);
    expect(goesToLeader("GET", "/api/v1/events?node=x")).toBe(true);
    expect(goesToLeader("GET", "/api/v1")).toBe(true);
    expect(goesToLeader("POST", "/master/group/remove")).toBe(true);
    expect(goesToLeader("GET", "/master/group/list")).toBe(false);
    expect(goesToLeader("POST", "/api/v10/x")).toBe(true);
  });
});
