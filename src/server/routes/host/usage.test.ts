import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { authHook } from "../../auth.js";
import { errorHandler } from "../../errors.js";
import { commonRoutes } from "./common.js";
import { openDb } from "../../../store/db.js";
import { UsageLedger } from "../../../rental/usage.js";
import { testSpec } from "../../../vm/testing.js";
import type { AppDeps } from "../../deps.js";

const ADMIN = "admin-token-0123456789";
const NODE = "a".repeat(64);
let app: FastifyInstance;

beforeAll(async () => {
  const clock = { t: Date.parse("2026-11-01T00:00:00Z") };
  const usage = new UsageLedger(openDb(":memory:"), () => new Date(clock.t));
  usage.running({ id: "v1", taskId: "v1", owner: "alice", spec: { ...testSpec("v1"), gpuCount: 2 } });
  clock.t += 2 * 3_600_000;
  usage.stopped("v1");
  app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } }).withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(errorHandler);
  app.addHook("onRequest", authHook({ adminToken: () => ADMIN }));
  const deps = { systemConfig: () => ({ nickname: "", batu: true }), usage: { nodeId: NODE, report: (f: Date, t: Date) => usage.report(f, t) } };
  await app.register(commonRoutes, { deps: deps as unknown as AppDeps });
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

describe("GET /common/usage", () => {
  const get = (q: string, auth = true) => app.inject({ method: "GET", url: `/common/usage${q}`, headers: auth ? { authorization: `Bearer ${ADMIN}` } : {} });
  const period = "?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z";

  it("gives the operator each renter's hours, as JSON or CSV", async () => {
    expect((await get(period, false)).statusCode).toBe(401);
    const json = await get(period);
    expect(json.statusCode).toBe(200);
    expect(json.json()).toEqual({
      node_id: NODE,
      from: "2026-11-01T00:00:00.000Z",
      to: "2026-11-02T00:00:00.000Z",
      usage: [{ renter: "alice", vm_hours: 2, vcpu_hours: 2, mem_gib_hours: 1, gpu_hours: 4 }],
    });
    const csv = await get(`${period}&format=csv`);
    expect(csv.headers["content-type"]).toMatch(/^text\/csv/);
    expect(csv.body.split("\r\n")[1]).toBe(`${NODE},alice,2026-11-01T00:00:00.000Z,2026-11-02T00:00:00.000Z,2,2,1,4`);
  });

  it("names the field of a bad period", async () => {
    expect((await get("?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z")).json().message).toMatch(/^from:/);
    expect((await get("?from=yesterday")).statusCode).toBe(400);
    expect((await get("?format=xml")).statusCode).toBe(400);
  });
});
