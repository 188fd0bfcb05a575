import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import { ok } from "../../../api/v1/envelope.js";
import { openDb } from "../../../store/db.js";
import { VmRepo } from "../../../vm/repo.js";
import type { VmService } from "../../../vm/service.js";
import { SummaryCache } from "../../../vm/summary-cache.js";
import { testSpec } from "../../../vm/testing.js";
import type { V1Deps } from "./deps.js";
import { v1Routes } from "./plugin.js";
import { taskListBody, taskSummary } from "./task-view.js";

const NODE = "e".repeat(64);
const repo = new VmRepo(openDb(":memory:"));
const summaries = new SummaryCache(repo);
let app: FastifyInstance;
// The reply as it was before the list was kept: fastify serializing the envelope object.
let plain: FastifyInstance;

beforeAll(async () => {
  for (const [id, owner] of [["a1", "alice"], ["b1", "bob"], ["a2", "alice"]] as const) {
    repo.insert({ id, nickname: "", owner, spec: testSpec(`task "${id}" ✓`), status: "closed" }, []);
  }
  const deps: V1Deps = {
    nodeId: NODE,
    nickname: () => "",
    version: "test",
    vms: { summariesFor: (owner: string) => summaries.summariesFor(owner) } as unknown as VmService,
    // The caller names itself in `additional.as`: authentication is not what this file tests.
    renters: { authorize: (body) => String(body.additional.as), sessionId: () => "", nodeState: () => "rented" },
    nodeInfo: async () => ({}),
    forwardHost: "127.0.0.1",
  };
  app = Fastify();
  await app.register(v1Routes, { prefix: "/api/v1", deps });
  plain = Fastify();
  plain.post("/", async () => ok(repo.summariesByOwner("alice").map(taskSummary)));
});
afterAll(async () => {
  await app.close();
  await plain.close();
});

const list = (as: string) => app.inject({ method: "POST", url: "/api/v1/tasks", payload: { peer_nodes_list: [NODE], additional: { as } } });

describe("tasks (the list)", () => {
  it("answers the same bytes and content type as fastify serializing the envelope", async () => {
    const want = await plain.inject({ method: "POST", url: "/" });
    for (let i = 0; i < 2; i++) {
      const r = await list("alice");
      expect(r.statusCode).toBe(200);
      expect(r.headers["content-type"]).toBe(want.headers["content-type"]);
      expect(r.rawPayload.equals(want.rawPayload)).toBe(true);
    }
    expect(JSON.parse((await list("bob")).payload).message.map((t: { task_id: string }) => t.task_id)).toEqual(["b1"]);
  });

  it("builds the bytes once per unchanged list, again after a change", async () => {
    const kept = summaries.summariesFor("alice");
    expect(taskListBody(kept)).toBe(taskListBody(kept));
    repo.update("a1", { status: "running" });
    const r = await list("alice");
    expect(JSON.parse(r.payload).message[0]).toMatchObject({ task_id: "a1", status: "running" });
    // An array that may still change is never kept.
    const open = repo.summariesByOwner("alice");
    expect(taskListBody(open)).not.toBe(taskListBody(open));
  });
});
