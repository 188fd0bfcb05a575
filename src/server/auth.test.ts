import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import { authHook } from "./auth.js";
import { errorHandler } from "./errors.js";
import { isLoopback } from "./transport.js";

const ADMIN = "admin-token-0123456789";
let app: FastifyInstance;

beforeAll(async () => {
  app = Fastify();
  app.setErrorHandler(errorHandler);
  app.addHook("onRequest", authHook({ adminToken: () => ADMIN, tlsPort: () => 10443 }));
  app.get("/common/config", async () => ({ ok: true }));
  app.post("/master/group/heartbeat", { config: { auth: "public", transport: "tls" } }, async () => ({ ok: true }));
  app.get("/master/group/hello", { config: { auth: "public" } }, async () => ({ ok: true }));
  await app.ready();
});
afterAll(() => app.close());

const get = (url: string, remoteAddress: string, token?: string) =>
  app.inject({ method: "GET", url, remoteAddress, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe("the host API's transport", () => {
  it("refuses the admin token over plain HTTP from another host, before comparing it, naming the HTTPS URL", async () => {
    for (const token of [ADMIN, "wrong-token", undefined]) {
      const r = await get("/common/config", "10.0.0.5", token);
      expect(r.statusCode).toBe(403);
      expect(r.json().message).toMatch(/^this call is served to other hosts over HTTPS only: use https:\/\/\S+:10443 \(the agent.s certificate: batu tls\)$/);
    }
  });

  it("serves plain HTTP from this machine (the CLI): the token decides", async () => {
    for (const ip of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) {
      expect((await get("/common/config", ip, ADMIN)).statusCode).toBe(200);
      expect((await get("/common/config", ip, "wrong-token")).statusCode).toBe(401);
    }
  });

  it("keeps a member's traffic on TLS, and the public hello open to anyone", async () => {
    expect((await app.inject({ method: "POST", url: "/master/group/heartbeat", remoteAddress: "10.0.0.5", payload: {} })).statusCode).toBe(403);
    expect((await app.inject({ method: "POST", url: "/master/group/heartbeat", remoteAddress: "127.0.0.1", payload: {} })).statusCode).toBe(200);
    expect((await get("/master/group/hello", "10.0.0.5")).statusCode).toBe(200);
  });

  it("knows loopback when it sees it, and nothing else as loopback", () => {
    expect(["127.0.0.1", "127.255.0.1", "::1", "::ffff:127.0.0.1"].map(isLoopback)).toEqual([true, true, true, true]);
    expect(["10.0.0.1", "::ffff:10.0.0.1", "128.0.0.1", "::2", "1127.0.0.1", "", undefined].map(isLoopback)).toEqual(Array(7).fill(false));
  });
});
