import { afterEach, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authHook } from "../../auth.js";
import { errorHandler } from "../../errors.js";
import { createLogger } from "../../../lib/logger.js";
import { HostMaintenance } from "../../../host/maintenance.js";
import { testCreateRequest, testVms, type TestVms } from "../../../vm/testing.js";
import type { AppDeps } from "../../deps.js";
import { maintenanceRoutes } from "./maintenance.js";

const ADMIN = "admin-token-0123456789";
let vms: TestVms;
let app: FastifyInstance;
afterEach(async () => {
  await app.close();
  await vms.close();
});

async function setUp(dataDir: string) {
  const maintenance = new HostMaintenance(dataDir);
  vms = await testVms({ shutdownTimeoutMs: 300, admission: () => maintenance.refusal() });
  app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } }).withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(errorHandler);
  app.addHook("onRequest", authHook({ adminToken: () => ADMIN }));
  const deps = { log: createLogger({ level: "silent" }), vms: vms.service, vmQueries: vms.queries } as unknown as AppDeps;
  await app.register(maintenanceRoutes, { deps, maintenance });
  await app.ready();
  return maintenance;
}
const post = (url: string, payload?: object) => app.inject({ method: "POST", url, payload: payload ?? {}, headers: { authorization: `Bearer ${ADMIN}` } });

describe("host maintenance", () => {
  it("cordon: running VMs go on, no VM starts (new or stopped), saying why; it holds across a restart until uncordon", async () => {
    const dir = mkdtempSync(join(tmpdir(), "batu-maint-"));
    await setUp(dir);
    await vms.service.create(testCreateRequest("run-1"), { wait: true });
    await vms.service.create(testCreateRequest("off-1"), { wait: true });
    await vms.service.act("off-1", "poweroff");

    const cordoned = await post("/common/host/cordon", { reason: "disk swap until 18:00" });
    expect(cordoned.json()).toMatchObject({ cordoned: true, reason: "disk swap until 18:00", drained: false });
    expect(vms.repo.get("run-1")!.status).toBe("running");
    await expect(vms.service.create(testCreateRequest("new-1"), { wait: true })).rejects.toThrow(/^node is under maintenance since .* disk swap until 18:00/);
    expect(() => vms.service.begin("off-1", "start")).toThrow(/under maintenance/);
    await expect(vms.service.act("off-1", "start")).rejects.toThrow(/under maintenance/);
    // Restart of a running VM is no new start: it goes ahead.
    await vms.service.act("run-1", "restart", { force: true });
    expect(vms.repo.get("run-1")!.status).toBe("running");

    // A new agent over the same data dir: still cordoned.
    expect(new HostMaintenance(dir).refusal()).toMatch(/disk swap/);
    expect((await post("/common/host/cordon", { reason: "x".repeat(201) })).statusCode).toBe(400);
    expect((await post("/common/host/uncordon")).json()).toEqual({ message: "ok" });
    expect(new HostMaintenance(dir).state).toBeNull();
    await vms.service.act("off-1", "start");
    expect(vms.repo.get("off-1")!.status).toBe("running");
  });

  it("drain: cordons and shuts every running VM down; they stay, shut down, after uncordon", async () => {
    await setUp(mkdtempSync(join(tmpdir(), "batu-maint-")));
    await vms.service.create(testCreateRequest("a1"), { wait: true });
    await vms.service.create(testCreateRequest("a2"), { wait: true });
    const drained = await post("/common/host/drain", { reason: "kernel update" });
    expect(drained.json()).toMatchObject({ message: "ok", maintenance: { cordoned: true, drained: true }, refused: [] });
    expect([...drained.json().stopping].sort()).toEqual(["a1", "a2"]);
    for (let i = 0; i < 300 && ["a1", "a2"].some((id) => vms.repo.get(id)!.status !== "closed"); i++) await new Promise((r) => setTimeout(r, 10));
    expect(["a1", "a2"].map((id) => vms.repo.get(id)!.status)).toEqual(["closed", "closed"]);
    expect((await app.inject({ method: "GET", url: "/common/host/maintenance", headers: { authorization: `Bearer ${ADMIN}` } })).json()).toMatchObject({ cordoned: true, drained: true, reason: "kernel update" });
    expect((await app.inject({ method: "POST", url: "/common/host/drain", payload: {} })).statusCode).toBe(401);
  });
});
