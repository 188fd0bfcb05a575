import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { build } from "../server/app.js";
import type { AppDeps } from "../server/deps.js";
import { DEFAULT_SYSTEM_CONFIG } from "../config/host-files.js";
import { RentalLedger } from "../auth/rental-ledger.js";
import { openDb } from "../store/db.js";
import { createLogger } from "../lib/logger.js";
import { readOnlyVms } from "../vm/testing.js";
import { cryptoWaitReady, testGroupService, testNode } from "../group/testing.js";
import { GroupRouter } from "../group/forward.js";
import type { GroupPeer } from "../group/master-role.js";
import { ImageCenter, type ImageTransport } from "../image/center.js";
import { parsePrometheusText, sample } from "./testing.js";
import { testV1Deps } from "../server/routes/v1/testing.js";

const ADMIN = "admin-token-0123456789abcdef";
const METRICS = "metrics-token-0123456789abcdef";
const T0 = Date.parse("2026-01-01T00:00:00Z");
let clock = T0;
let app: FastifyInstance;
let router: GroupRouter;
let images: ImageCenter;
let progressOf: (script: (report: (done: number, total: number) => void) => void) => void;

beforeAll(async () => {
  await cryptoWaitReady();
  const db = openDb(":memory:");
  const vms = readOnlyVms(db);
  const group = testGroupService({ seed: 7, hostConfig: { host_type: "master", group_name: "g" }, now: () => new Date(clock) });
  // Members heard from 5 s, 20 s and 100 s before the scrape, by the master's clock.
  const member = (seed: number, ago: number) => group.members.upsert({ address: `10.0.0.${seed}:10000`, nodeId: testNode(seed).nodeId, nickname: `m${seed}` }, new Date(T0 + 200_000 - ago * 1000));
  member(11, 5);
  member(12, 20);
  member(13, 100);
  clock = T0 + 200_000;
  router = new GroupRouter({ ...testNode(7), peer: () => undefined, masterNodeId: () => undefined });
  images = new ImageCenter({
    cache: "/nonexistent",
    servers: () => [{ id: "S1", kind: "http", host: "127.0.0.1", port: 1, prefix: "/images" }],
    transports: { http: progressTransport(), rsync: progressTransport() },
    inUse: () => undefined,
  });
  const deps: AppDeps = {
    log: createLogger({ level: "silent" }),
    adminToken: () => ADMIN,
    metricsToken: () => METRICS,
    systemConfig: () => DEFAULT_SYSTEM_CONFIG,
    group: group.service,
    vms: vms.service,
    vmQueries: vms.queries,
    disks: vms.disks,
    snapshots: vms.snapshots,
    images,
    rentals: new RentalLedger(db),
    forwards: router,
    rotateToken: () => "/nowhere",
    v1: testV1Deps(vms, {
      nodeId: group.nodeId,
      images,
      renters: { authorize: () => "renter-1", sessionId: () => "s", nodeState: () => "rented" },
    }),
  };
  app = await build(deps);
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  router?.close();
});

/** A transport whose download reports what `progressOf` is given, then ends. */
function progressTransport(): ImageTransport {
  return {
    list: async () => [],
    download: (_s, _n, _d, opts) =>
      new Promise<void>((resolve) => {
        progressOf = (script) => {
          script(opts.onProgress);
          resolve();
        };
      }),
    upload: async () => undefined,
  };
}

const get = (url: string, token?: string) => app.inject({ method: "GET", url, remoteAddress: "127.0.0.1", headers: token ? { authorization: `Bearer ${token}` } : {} });
const scrape = async () => {
  const r = await get("/metrics", METRICS);
  expect(r.statusCode).toBe(200);
  return parsePrometheusText(r.body);
};

describe("GET /metrics", () => {
  it("takes the admin token or the metrics token, nothing less", async () => {
    expect((await get("/metrics")).statusCode).toBe(401);
    expect((await get("/metrics", "wrong-token-0123456789")).statusCode).toBe(401);
    for (const token of [ADMIN, METRICS]) {
      const r = await get("/metrics", token);
      expect(r.statusCode).toBe(200);
      expect(r.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    }
  });

  it("is served to other hosts over HTTPS only, like every route that takes a token", async () => {
    const r = await app.inject({ method: "GET", url: "/metrics", remoteAddress: "10.0.0.5", headers: { authorization: `Bearer ${METRICS}` } });
    expect(r.statusCode).toBe(403);
  });

  it("opens nothing else with the metrics token: every other route answers it as it answers a wrong token", async () => {
    const routes = Object.entries((app.swagger() as { paths: Record<string, Record<string, unknown>> }).paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => ({ method: m.toUpperCase() as "GET" | "POST", url: path.replace(/\{[^}]+\}/g, "x") })),
    );
    const others = routes.filter((r) => r.url !== "/metrics");
    expect(others.length).toBeGreaterThan(50);
    const refused: string[] = [];
    for (const r of others) {
      const call = (token: string) =>
        app.inject({ method: r.method, url: r.url, remoteAddress: "127.0.0.1", headers: { authorization: `Bearer ${token}` }, ...(r.method === "POST" ? { payload: {} } : {}) });
      const withMetrics = await call(METRICS);
      const withWrong = await call("wrong-token-0123456789");
      expect(withMetrics.statusCode, `${r.method} ${r.url}`).toBe(withWrong.statusCode);
      if (withMetrics.statusCode === 401) refused.push(r.url);
      // Never once past the token check.
      expect(withMetrics.statusCode === 401 || withWrong.statusCode !== 401, `${r.method} ${r.url}`).toBe(true);
    }
    // Every operator's route (/common) refused it; the renter API and joins authenticate in their services.
    const common = others.filter((r) => r.url.startsWith("/common/")).map((r) => r.url);
    expect(common.length).toBeGreaterThan(20);
    expect(refused).toEqual(expect.arrayContaining(common));
  });

  it("counts requests by route pattern and status, never by raw URL", async () => {
    const before = await scrape();
    for (const id of ["a1", "b2", "c3"]) await get(`/common/vm/stats?vm_id=${id}`, ADMIN);
    await get("/common/vm/list", ADMIN);
    await get("/common/vm/list");
    await get("/no/such/path/4f9a");
    const m = await scrape();
    const added = (name: string, labels: Record<string, string>) => (sample(m, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    expect(added("batu_http_requests_total", { method: "GET", route: "/common/vm/stats", status: "404" })).toBe(3);
    expect(added("batu_http_requests_total", { method: "GET", route: "/common/vm/list", status: "200" })).toBe(1);
    expect(added("batu_http_requests_total", { method: "GET", route: "/common/vm/list", status: "401" })).toBe(1);
    expect(added("batu_http_requests_total", { method: "GET", route: "(unmatched)", status: "404" })).toBe(1);
    expect(added("batu_http_request_duration_seconds_count", { method: "GET", route: "/common/vm/stats", status: "404" })).toBe(3);
    // The scrape before this one is counted too, under its own route.
    expect(added("batu_http_requests_total", { method: "GET", route: "/metrics", status: "200" })).toBe(1);
    expect(m.samples.some((s) => Object.values(s.labels).some((v) => v.includes("4f9a") || v.includes("vm_id=")))).toBe(false);
  });

  it("counts the master's members by state, with each one's heartbeat age", async () => {
    const m = await scrape();
    expect(sample(m, "batu_group_members", { state: "alive" })).toBe(1);
    expect(sample(m, "batu_group_members", { state: "suspect" })).toBe(1);
    expect(sample(m, "batu_group_members", { state: "dead" })).toBe(1);
    expect(sample(m, "batu_group_member_heartbeat_age_seconds", { address: "10.0.0.12:10000", node_id: testNode(12).nodeId, nickname: "m12" })).toBe(20);
    expect(sample(m, "batu_group_member_heartbeat_age_seconds", { address: "10.0.0.13:10000", node_id: testNode(13).nodeId, nickname: "m13" })).toBe(100);
  });

  it("shows every VM status (none here), and the process's own figures", async () => {
    const m = await scrape();
    expect(sample(m, "batu_vms", { status: "running" })).toBe(0);
    expect(sample(m, "batu_vm_figures_unread", {})).toBe(0);
    expect(m.types.get("process_cpu_user_seconds_total")).toBe("counter");
  });

  it("times forwarded calls by outcome", async () => {
    // No certificate pinned for it: the call fails before a byte is sent, as unreachable.
    const peer: GroupPeer = { nodeId: testNode(21).nodeId, address: "127.0.0.1:1", nickname: "p", state: "alive", lastSeen: new Date().toISOString(), capacity: null, tls: null };
    await expect(router.forward(peer, { method: "POST", url: "/api/v1/tasks", bodyText: "{}", renter: null })).rejects.toThrow(/unreachable/);
    const m = await scrape();
    expect(sample(m, "batu_forward_duration_seconds_count", { outcome: "unreachable" })).toBe(1);
  });

  it("counts image bytes moved, not those a resumed transfer had already", async () => {
    images.download("S1", "resumed.qcow2");
    await new Promise((r) => setImmediate(r));
    progressOf((report) => {
      report(400, 1000); // kept from an earlier try
      report(700, 1000);
      report(1000, 1000);
    });
    await images.finished("resumed.qcow2", "download");
    const m = await scrape();
    expect(sample(m, "batu_image_transfer_bytes_total", { direction: "download" })).toBe(600);
  });
});
