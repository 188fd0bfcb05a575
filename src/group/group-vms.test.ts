import { describe, expect, it } from "vitest";
import { ApiError } from "../api/errors.js";
import { GroupVms, MEMBER_VMS_PATH } from "./group-vms.js";
import type { GroupPeer } from "./master-role.js";
import type { ForwardCall } from "./forward.js";

const MASTER = "0".repeat(64);
const node = (i: number) => String(i).repeat(64);
const peer = (i: number): GroupPeer => ({
  nodeId: node(i),
  address: `10.0.0.${i}:10000`,
  nickname: `m${i}`,
  state: "alive",
  lastSeen: "2026-01-01T00:00:00.000Z",
  capacity: null,
  tls: { port: 10443, sha256: "d".repeat(64) },
});
const vms = (prefix: string, n: number) => Array.from({ length: n }, (_, j) => ({ id: `${prefix}-${j}` }));

/**
 * A master with its own VMs and members 1..`counts.length`, member i holding `counts[i-1]` VMs; the
 * router answers as each member would (an unreachable one throws as the router does), and counts the calls.
 */
function group(own: number, counts: number[], opts: { unreachable?: number[]; concurrency?: number } = {}) {
  const asked: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const router = {
    async forward(p: GroupPeer, call: ForwardCall) {
      expect([call.method, call.url]).toEqual(["POST", MEMBER_VMS_PATH]);
      asked.push(p.nodeId);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      const i = Number(p.nodeId[0]);
      if (opts.unreachable?.includes(i)) throw new Error(`node ${p.nodeId} is unreachable: no connection within 2000 ms`);
      return { status: 200, contentType: "application/json", body: Buffer.from(JSON.stringify(vms(`m${i}`, counts[i - 1]!))) };
    },
    verifyForwarded: () => undefined,
  };
  const list = new GroupVms({
    nodeId: MASTER,
    selfAddress: () => "10.0.0.100:10000",
    isMaster: () => true,
    peers: () => counts.map((_, k) => peer(k + 1)),
    router,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
  return { list: (q = {}) => list.list(vms("own", own), q), asked, maxInFlight: () => maxInFlight };
}

/** Walks every page of `limit`; the VMs in order, and each page's members asked. */
async function walk(g: ReturnType<typeof group>, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let after: string | undefined;
  for (let pages = 1; ; pages++) {
    const page = await g.list({ limit, ...(after ? { after } : {}) });
    expect(page.vms.length).toBeLessThanOrEqual(limit);
    ids.push(...page.vms.map((v) => v.id));
    if (page.next === null) return { ids, pages };
    expect(page.next).toBe(`${page.vms.at(-1)!.node_id}/${page.vms.at(-1)!.id}`);
    after = page.next;
  }
}

describe("GroupVms", () => {
  it("lists every node's VMs in node order, each with its node, asking every member", async () => {
    const g = group(2, [3, 0, 1]);
    const all = await g.list();
    expect(all.vms.map((v) => `${v.node_address} ${v.id}`)).toEqual([
      "10.0.0.100:10000 own-0",
      "10.0.0.100:10000 own-1",
      "10.0.0.1:10000 m1-0",
      "10.0.0.1:10000 m1-1",
      "10.0.0.1:10000 m1-2",
      "10.0.0.3:10000 m3-0",
    ]);
    expect(all.vms[0]!.node_id).toBe(MASTER);
    expect([all.unreachable, all.next]).toEqual([[], undefined]);
    expect(g.asked).toEqual([node(1), node(2), node(3)]);
  });

  it("pages in node order through every VM once, a page asking only the members it needs", async () => {
    const counts = [3, 0, 5, 2, 4, 1, 0, 6, 2];
    const every = (await group(4, counts).list()).vms.map((v) => v.id);
    for (const limit of [1, 3, 4, 7, 100]) {
      const { ids } = await walk(group(4, counts, { concurrency: 2 }), limit);
      expect(ids).toEqual(every);
    }
    const g = group(4, counts, { concurrency: 2 });
    const first = await g.list({ limit: 4 });
    expect([first.vms.map((v) => v.id), first.next, g.asked]).toEqual([["own-0", "own-1", "own-2", "own-3"], `${MASTER}/own-3`, []]);
    g.asked.length = 0;
    const second = await g.list({ limit: 4, after: first.next });
    expect([second.vms.map((v) => v.id), second.next, g.asked]).toEqual([["m1-0", "m1-1", "m1-2", "m3-0"], `${node(3)}/m3-0`, [node(1), node(2), node(3), node(4)]]);
    // The members of a page, and at most a wave more already asked when it filled: never the rest.
    expect(g.asked).not.toContain(node(5));
  });

  it("asks at most `concurrency` members at once: a whole list keeps that many busy, a page grows its waves 1, 2, 4, ... up to it", async () => {
    const whole = group(0, Array.from({ length: 9 }, () => 1), { concurrency: 3 });
    expect((await whole.list()).vms).toHaveLength(9);
    expect(whole.maxInFlight()).toBe(3);
    const paged = group(0, Array.from({ length: 9 }, () => 1), { concurrency: 3 });
    expect((await paged.list({ limit: 3 })).vms).toHaveLength(3);
    // The master (none), then members 1-2, then 3-5: the page is full within them.
    expect([paged.maxInFlight(), paged.asked]).toEqual([3, [1, 2, 3, 4, 5].map(node)]);
  });

  it("one node's VMs with node_id; an unreachable member is left out and named; a stale cursor is a 400 naming `after`", async () => {
    const g = group(2, [3, 2, 1], { unreachable: [2] });
    expect((await g.list({ nodeId: node(3) })).vms.map((v) => v.id)).toEqual(["m3-0"]);
    expect(g.asked).toEqual([node(3)]);
    expect((await g.list({ nodeId: MASTER })).vms.map((v) => v.id)).toEqual(["own-0", "own-1"]);
    await expect(g.list({ nodeId: "f".repeat(64) })).rejects.toThrow(/^node_id: f+ is neither this master nor one of its members/);

    const all = await g.list();
    expect(all.vms.map((v) => v.id)).toEqual(["own-0", "own-1", "m1-0", "m1-1", "m1-2", "m3-0"]);
    expect(all.unreachable).toEqual([{ node_id: node(2), reason: expect.stringMatching(/no connection within 2000 ms/) }]);

    const bad = (after: string) => g.list({ limit: 2, after }).then(() => "", (e: ApiError) => `${e.code}: ${e.message}`);
    expect(await bad(`${node(1)}/m1-9`)).toMatch(/^bad_request: after: no VM m1-9 on node 1+ \(it was deleted\)/);
    expect(await bad(`${"e".repeat(64)}/x`)).toMatch(/^bad_request: after: node e+ is not in this list/);
  });
});
