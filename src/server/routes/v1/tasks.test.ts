import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import { ok } from "../../../api/v1/envelope.js";
import { readOnlyVms, testSpec } from "../../../vm/testing.js";
import { testV1Deps } from "./testing.js";
import { v1Routes } from "./plugin.js";
import { taskDetail, TaskReplies, taskSummary } from "./task-view.js";

const NODE = "e".repeat(64);
const vms = readOnlyVms();
const { repo, queries } = vms;
let app: FastifyInstance;
let freed = 0;
// The replies as they were before they were kept: fastify serializing the envelope object.
let plain: FastifyInstance;

beforeAll(async () => {
  for (const [id, owner] of [["a1", "alice"], ["b1", "bob"], ["a2", "alice"]] as const) {
    repo.insert({ id, nickname: "", owner, spec: testSpec(`task "${id}" ✓`), status: "closed" }, []);
    repo.setSystemDiskBytes(id, 20 * 2 ** 30);
  }
  const deps = testV1Deps(vms, {
    nodeId: NODE,
    // The caller names itself in `additional.as`: authentication is not what this file tests.
    renters: { authorize: (body) => String(body.additional.as), sessionId: () => "", nodeState: () => "rented" },
    freeMemory: async () => (freed++, "not allowed"),
  });
  app = Fastify();
  await app.register(v1Routes, { prefix: "/api/v1", deps });
  plain = Fastify();
  plain.post("/list", async () => ok(repo.summariesByOwner("alice").map(taskSummary)));
  plain.post("/a1", async () => ok(taskDetail(repo.get("a1")!, "127.0.0.1", 20 * 2 ** 30)));
});
afterAll(async () => {
  await app.close();
  await plain.close();
});

const call = (path: string, as: string) => app.inject({ method: "POST", url: `/api/v1/${path}`, payload: { peer_nodes_list: [NODE], additional: { as } } });

async function sameAsPlain(path: string, plainPath: string): Promise<void> {
  const want = await plain.inject({ method: "POST", url: plainPath });
  for (let i = 0; i < 2; i++) {
    const r = await call(path, "alice");
    expect(r.statusCode).toBe(200);
    expect(r.headers["content-type"]).toBe(want.headers["content-type"]);
    expect(r.rawPayload.equals(want.rawPayload)).toBe(true);
  }
}

describe("tasks (the list) and tasks/<id>", () => {
  it("answer the same bytes and content type as fastify serializing the envelope", async () => {
    await sameAsPlain("tasks", "/list");
    await sameAsPlain("tasks/a1", "/a1");
    expect(JSON.parse((await call("tasks", "bob")).payload).message.map((t: { task_id: string }) => t.task_id)).toEqual(["b1"]);
    expect(JSON.parse((await call("tasks/a1", "bob")).payload).errcode).not.toBe(0);
  });

  it("build the bytes once per unchanged list or record, again after a change", async () => {
    const replies = new TaskReplies(queries);
    const list = replies.list("alice");
    expect(replies.list("alice")).toBe(list);
    const detail = await replies.detail("alice", "a1", "127.0.0.1");
    expect(await replies.detail("alice", "a1", "127.0.0.1")).toBe(detail);
    expect(await replies.detail("alice", "a1", "10.0.0.1")).not.toEqual(detail);
    await expect(replies.detail("bob", "a1", "127.0.0.1")).rejects.toThrow("not exist");
    repo.update("a1", { status: "running" });
    expect(replies.list("alice")).not.toBe(list);
    expect(JSON.parse((await call("tasks", "alice")).payload).message[0]).toMatchObject({ task_id: "a1", status: "running" });
    expect(JSON.parse((await call("tasks/a1", "alice")).payload).message).toMatchObject({ task_id: "a1", status: "running" });
    expect(JSON.parse((await replies.detail("alice", "a1", "127.0.0.1")).toString()).message.status).toBe("running");
  });
});

describe("mining_nodes/free_memory", () => {
  it("answers DBC's ok to a renter of the node, after asking the host to free memory once", async () => {
    const r = await call("mining_nodes/free_memory", "alice");
    expect(r.statusCode).toBe(200);
    expect(JSON.parse(r.payload)).toEqual({ errcode: 0, message: "ok" });
    expect(freed).toBe(1);
  });
});

describe("bodies whatever their Content-Type, as DBC's node reads them", () => {
  const body = JSON.stringify({ peer_nodes_list: [NODE], additional: { as: "bob" } });
  it("parses JSON sent with no type, a form type (curl -d), text or JSON", async () => {
    for (const type of [undefined, "application/x-www-form-urlencoded", "text/plain", "application/json", "application/octet-stream"]) {
      const r = await app.inject({ method: "POST", url: "/api/v1/tasks", payload: body, headers: type ? { "content-type": type } : {} });
      expect(r.statusCode, String(type)).toBe(200);
      expect(JSON.parse(r.payload).message.map((t: { task_id: string }) => t.task_id), String(type)).toEqual(["b1"]);
    }
  });
  it("answers a body that is not JSON with DBC's -25, whatever the type", async () => {
    for (const type of [undefined, "application/x-www-form-urlencoded"]) {
      const r = await app.inject({ method: "POST", url: "/api/v1/tasks", payload: "peer_nodes_list=x", headers: type ? { "content-type": type } : {} });
      expect(r.statusCode, String(type)).toBe(400);
      expect(JSON.parse(r.payload), String(type)).toMatchObject({ errcode: -25, message: expect.stringMatching(/^json parse error/) });
    }
  });
});

describe("events: the identity in the query", () => {
  it("refuses a repeated field with DBC's -25 naming it, never a 500", async () => {
    const r = await app.inject({ method: "GET", url: `/api/v1/events?node=${NODE}&node=${NODE}` });
    expect(r.statusCode).toBe(400);
    expect(JSON.parse(r.payload)).toMatchObject({ errcode: -25, message: expect.stringMatching(/node/) });
  });
});
