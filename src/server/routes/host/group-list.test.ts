import { afterEach, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { authHook } from "../../auth.js";
import { errorHandler } from "../../errors.js";
import { cryptoWaitReady, testGroupService, testNode, TEST_CAPACITY } from "../../../group/testing.js";
import { signHeartbeat } from "../../../group/heartbeat.js";
import type { AppDeps } from "../../deps.js";
import { groupRoutes } from "./group.js";

const ADMIN = "admin-token-0123456789abcdef";
const T0 = Date.parse("2026-01-01T00:00:00Z");
let app: FastifyInstance;
afterEach(async () => {
  await app.close();
});
beforeAll(async () => {
  await cryptoWaitReady();
});

/** A master's group/list route over a group service with `count` members (seeds 10..), its clock at `clock.at`. */
async function master(count: number) {
  const clock = { at: T0 };
  const group = testGroupService({ seed: 1, hostConfig: { host_type: "master", group_name: "g1" }, now: () => new Date(clock.at) });
  for (let i = 0; i < count; i++) {
    group.service.recordJoin({ address: `10.0.0.${10 + i}:10000`, node_id: testNode(10 + i).nodeId, nickname: `m${i}` }, "127.0.0.1", ADMIN);
  }
  app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } }).withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(errorHandler);
  app.addHook("onRequest", authHook({ adminToken: () => ADMIN }));
  await app.register(groupRoutes, { deps: { group: group.service } as unknown as AppDeps });
  await app.ready();
  return { ...group, clock };
}

async function list(query = ""): Promise<any> {
  const res = await app.inject({ method: "GET", url: `/master/group/list${query}`, headers: { authorization: `Bearer ${ADMIN}` } });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
  return res.json();
}

/** Member `i`'s heartbeat, signed by its node key, at the master's clock. */
function beat(m: Awaited<ReturnType<typeof master>>, i: number, vmCount: number): void {
  const { nodeId, key } = testNode(10 + i);
  const hb = signHeartbeat({ node_id: nodeId, address: `10.0.0.${10 + i}:10000`, nickname: `m${i}`, sent_at: m.clock.at, capacity: { ...TEST_CAPACITY, vm_count: vmCount } }, key);
  m.service.recordHeartbeat(hb, `10.0.0.${10 + i}`);
}

describe("GET /master/group/list (serialized member by member, kept while a member is unchanged)", () => {
  it("answers what the service lists, whole, filtered and paged", async () => {
    const m = await master(5);
    beat(m, 0, 3);
    m.clock.at += 30_000; // members 1..4 silent for 30 s: suspect; member 0 too (its beat was at T0)
    beat(m, 2, 1);
    for (const query of [{}, { state: "alive" as const }, { state: "suspect" as const }, { limit: 2 }, { limit: 2, after: "10.0.0.11:10000" }, { limit: 3, after: "10.0.0.12:10000" }]) {
      const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
      expect(await list(qs ? `?${qs}` : "")).toEqual(JSON.parse(JSON.stringify(m.service.list(query))));
    }
    const page = await list("?limit=2&after=10.0.0.13:10000");
    expect([page.member.map((x: { address: string }) => x.address), page.total, page.next]).toEqual([["10.0.0.14:10000"], 5, null]);
    const bad = await app.inject({ method: "GET", url: "/master/group/list?after=10.9.9.9:1", headers: { authorization: `Bearer ${ADMIN}` } });
    expect([bad.statusCode, bad.json().message]).toEqual([400, expect.stringMatching(/^after: no member at 10\.9\.9\.9:1/)]);
  });

  it("a join, a heartbeat, a state change by silence alone, a flush and a removal each show in the next list", async () => {
    const m = await master(3);
    const first = await list();
    expect(first.member.map((x: { address: string }) => x.address)).toEqual(["10.0.0.10:10000", "10.0.0.11:10000", "10.0.0.12:10000"]);
    expect(await list()).toEqual(first);

    m.service.recordJoin({ address: "10.0.0.13:10000", node_id: testNode(13).nodeId, nickname: "late" }, "127.0.0.1", ADMIN);
    expect((await list()).member.at(-1)).toMatchObject({ address: "10.0.0.13:10000", nickname: "late", state: "alive", capacity: null });

    m.clock.at += 5_000;
    beat(m, 1, 7);
    const beaten = (await list()).member[1];
    expect(beaten).toMatchObject({ last_seen: new Date(m.clock.at).toISOString(), capacity: { vm_count: 7 }, heartbeat_proof: "node key" });
    expect((await list()).member[0].heartbeat_proof).toBeUndefined();

    // Nothing written: only the clock moves, and the members silent for 10 s (all but the one that beat) turn suspect.
    m.clock.at += 6_000;
    expect((await list()).member.map((x: { state: string }) => x.state)).toEqual(["suspect", "alive", "suspect", "suspect"]);

    // The heartbeat kept in memory is written out: the list is the same.
    const before = await list();
    m.members.flush();
    expect(await list()).toEqual(before);
    beat(m, 1, 8);
    expect((await list()).member[1].capacity.vm_count).toBe(8);

    m.service.remove({ node_id: testNode(11).nodeId });
    const after = await list();
    expect(after.member.map((x: { address: string }) => x.address)).toEqual(["10.0.0.10:10000", "10.0.0.12:10000", "10.0.0.13:10000"]);
    expect(after.members).toEqual(after.member);
  });
});
