import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authHook } from "../../auth.js";
import { errorHandler } from "../../errors.js";
import { commonRoutes } from "./common.js";
import { openDb } from "../../../store/db.js";
import { createLogger } from "../../../lib/logger.js";
import { GpuPool } from "../../../gpu/pool.js";
import { buildFakeSysfs, eightGpuHost, FakeKernelSysfs } from "../../../gpu/testing.js";
import { PassthroughGpus } from "../../../vm/guest-gpus.js";
import type { AppDeps } from "../../deps.js";

const ADMIN = "admin-token-0123456789";
let app: FastifyInstance;
let root: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "batu-sysfs-"));
  const devices = eightGpuHost();
  devices[0]!.bootVga = true;
  buildFakeSysfs(root, devices);
  const pool = new GpuPool(openDb(":memory:"));
  const gpus = new PassthroughGpus({ sysfs: new FakeKernelSysfs(root, devices), pool, releaseToHost: false, nvidiaSmi: false, log: createLogger({ level: "silent" }) });
  await gpus.prepare({ id: "vm-a", spec: { gpuCount: 2, os: "linux" } } as never);
  app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } }).withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(errorHandler);
  app.addHook("onRequest", authHook({ adminToken: () => ADMIN }));
  await app.register(commonRoutes, { deps: { systemConfig: () => ({ nickname: "", batu: true }), gpus: () => gpus.inventory() } as unknown as AppDeps });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  rmSync(root, { recursive: true, force: true });
});

describe("GET /common/gpu/list", () => {
  it("shows the operator each GPU's state: the VM holding it, or why it cannot be passed through", async () => {
    expect((await app.inject({ method: "GET", url: "/common/gpu/list" })).statusCode).toBe(401);
    const r = await app.inject({ method: "GET", url: "/common/gpu/list", headers: { authorization: `Bearer ${ADMIN}` } });
    expect(r.statusCode).toBe(200);
    const list = r.json() as Array<{ pci_address: string; state: string; vm_id: string | null; reason: string | null; numa_node: number }>;
    expect(list).toHaveLength(8);
    expect(list[0]).toMatchObject({ pci_address: "0000:1b:00.0", state: "unavailable", reason: "it is the host's boot display", vm_id: null });
    expect(list.filter((g) => g.state === "in use").map((g) => [g.pci_address, g.vm_id])).toEqual([
      ["0000:1c:00.0", "vm-a"],
      ["0000:3d:00.0", "vm-a"],
    ]);
    expect(list.filter((g) => g.state === "free")).toHaveLength(5);
  });
});
