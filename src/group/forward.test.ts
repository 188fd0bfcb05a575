import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { IncomingHttpHeaders } from "node:http";
import { once } from "node:events";
import { DbcError } from "../api/v1/envelope.js";
import { FORWARD_HEADERS, GroupRouter, NO_BODY_TEXT, type ForwardCall } from "./forward.js";
import { SessionKeys } from "./session-keys.js";
import type { GroupPeer } from "./master-role.js";
import { cryptoWaitReady, peerServer, testNode } from "./testing.js";

let masterNode: ReturnType<typeof testNode>;
let memberNode: ReturnType<typeof testNode>;
beforeAll(async () => {
  await cryptoWaitReady();
  masterNode = testNode(1);
  memberNode = testNode(2);
});

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** The member as the master records it: its plain address, and the TLS endpoint it pinned. */
const peerAt = (member: { address: string; tls: GroupPeer["tls"] }, state: GroupPeer["state"] = "alive"): GroupPeer => ({
  nodeId: memberNode.nodeId,
  address: member.address,
  nickname: "m",
  state,
  lastSeen: "2026-01-01T00:00:00.000Z",
  capacity: null,
  tls: member.tls,
});

const call: ForwardCall = { method: "POST", url: "/api/v1/tasks?x=1", bodyText: '{"peer_nodes_list":["n"]}', renter: "5Renter" };

/**
 * The master's router and a member (a tiny server) whose own router checks every call it gets; each
 * side with its session keys when given. A refusal answers its own HTTP status where it has one (an
 * unknown session key's 401), else 403.
 */
async function masterAndMember(sessions: { master?: SessionKeys; member?: SessionKeys } = {}) {
  const seen: IncomingHttpHeaders[] = [];
  const memberRouter = new GroupRouter({ nodeId: memberNode.nodeId, key: memberNode.key, peer: () => undefined, masterNodeId: () => masterNode.nodeId, ...(sessions.member ? { sessions: sessions.member } : {}) });
  const member = await peerServer(
    {},
    {
      "POST /api/v1/tasks": (req, res, body) => {
        seen.push(req.headers);
        try {
          const renter = memberRouter.verifyForwarded(req.headers, req.method!, req.url!, body);
          res.writeHead(201, { "content-type": "text/x-test" });
          res.end(`renter=${renter}`);
        } catch (e) {
          res.writeHead(e instanceof DbcError && e.httpStatus >= 400 ? e.httpStatus : 403, { "content-type": "text/plain" });
          res.end((e as Error).message);
        }
      },
      "GET /api/v1/events": (req, res) => {
        // A GET has no body: the signature covers NO_BODY_TEXT.
        const renter = memberRouter.verifyForwarded(req.headers, req.method!, req.url!, NO_BODY_TEXT);
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${renter}\n\n`);
      },
    },
  );
  closers.push(member.close);
  const peers = new Map<string, GroupPeer>();
  const router = new GroupRouter({ nodeId: masterNode.nodeId, key: masterNode.key, peer: (id) => peers.get(id), masterNodeId: () => undefined, ...(sessions.master ? { sessions: sessions.master } : {}) });
  closers.push(() => router.close());
  return { router, member, memberRouter, peers, seen };
}

async function refusal(p: Promise<unknown>): Promise<DbcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DbcError) return e;
    throw e;
  }
  throw new Error("did not throw");
}

describe("GroupRouter", () => {
  it("forwards a call signed so that the member accepts it, and returns its reply unchanged", async () => {
    const { router, member } = await masterAndMember();
    const r = await router.forward(peerAt(member), call);
    expect({ status: r.status, contentType: r.contentType, body: r.body.toString() }).toEqual({
      status: 201,
      contentType: "text/x-test",
      body: "renter=5Renter",
    });
    // Twice more over the kept connection, each with its own nonce.
    for (let i = 0; i < 2; i++) expect((await router.forward(peerAt(member), call)).status).toBe(201);
  });

  it("the member accepts each signed call once: a replay of its headers is refused", async () => {
    const { router, member, memberRouter, seen } = await masterAndMember();
    await router.forward(peerAt(member), call);
    expect(() => memberRouter.verifyForwarded(seen[0]!, call.method, call.url, call.bodyText)).toThrow(/forwarded call refused: replayed/);
    expect(memberRouter.verifyForwarded({}, call.method, call.url, call.bodyText)).toBeUndefined();
  });

  it("a call signed by another node, or for another body, is refused by the member", async () => {
    const { member } = await masterAndMember();
    const impostor = new GroupRouter({ nodeId: masterNode.nodeId, key: testNode(9).key, peer: () => undefined, masterNodeId: () => undefined });
    closers.push(() => impostor.close());
    const r = await impostor.forward(peerAt(member), call);
    expect([r.status, r.body.toString()]).toEqual([403, "check authority failed: forwarded call refused: bad signature"]);
  });

  it("a dead member fails at once; one that cannot be reached fails with -32701 naming it", async () => {
    const { router, member } = await masterAndMember();
    const dead = await refusal(router.forward(peerAt(member, "dead"), call));
    expect([dead.errcode, dead.httpStatus]).toEqual([-32701, 400]);
    expect(dead.message).toBe(`create node request failed: node ${memberNode.nodeId} is unreachable: its agent is dead (last seen 2026-01-01T00:00:00.000Z)`);
    const gone = await peerServer({});
    await gone.close();
    const refused = await refusal(router.forward(peerAt(gone, "suspect"), call));
    expect(refused.message).toMatch(new RegExp(`^create node request failed: node ${memberNode.nodeId} is unreachable: connect ECONNREFUSED`));
  });

  it("calls a member over TLS only, to the certificate pinned for it: another one gets not a byte", async () => {
    const { router, member } = await masterAndMember();
    await router.forward(peerAt(member), call);
    expect(member.seen).toEqual({ plain: 0, tls: 1 });
    // A host at the member's address whose certificate is another (an impostor, or the member's own made anew).
    const impostor = await peerServer({}, { "POST /api/v1/tasks": (_req, res) => res.end("got it") }, "impostor");
    closers.push(impostor.close);
    const swapped = await refusal(router.forward(peerAt({ address: impostor.address, tls: { ...impostor.tls, sha256: member.tls.sha256 } }), call));
    expect(swapped.errcode).toBe(-32701);
    expect(swapped.message).toMatch(/its TLS certificate \(sha256 [0-9a-f]{16}…\) is not the one pinned for it/);
    expect(impostor.seen).toEqual({ plain: 0, tls: 0 });
    // Pinned to the impostor's own certificate, the same call goes through: the pin is what decided.
    expect((await router.forward(peerAt(impostor), call)).body.toString()).toBe("got it");
    // A member with no certificate pinned yet is not called at all.
    const unpinned = await refusal(router.forward(peerAt({ address: member.address, tls: null }), call));
    expect(unpinned.message).toMatch(/no TLS certificate is pinned for it yet/);
    expect(member.seen).toEqual({ plain: 0, tls: 1 });
  });

  it("opens a member's event stream with a signed GET", async () => {
    const { router, member } = await masterAndMember();
    const stream = await router.stream(peerAt(member), { method: "GET", url: "/api/v1/events", bodyText: NO_BODY_TEXT, renter: "5Renter" });
    closers.push(() => stream.destroy());
    expect(stream.headers["content-type"]).toBe("text/event-stream");
    const [first] = (await once(stream, "data")) as [Buffer];
    expect(first.toString()).toBe("data: 5Renter\n\n");
  });

  it("knows its own node is no peer", async () => {
    const { router, member, peers } = await masterAndMember();
    peers.set(memberNode.nodeId, peerAt(member));
    peers.set(masterNode.nodeId, peerAt(member));
    expect(router.peer(memberNode.nodeId)?.address).toBe(member.address);
    expect(router.peer(masterNode.nodeId)).toBeUndefined();
  });
});

describe("GroupRouter with session keys", () => {
  it("MACs its calls with the member's session key; a member that lost the key (restarted) gets the call signed again, once", async () => {
    const masterKeys = new SessionKeys();
    const memberKeys = new SessionKeys();
    const key = Buffer.alloc(32, 7);
    masterKeys.hold(memberNode.nodeId, "00000000000000aa", key);
    memberKeys.hold(masterNode.nodeId, "00000000000000aa", key);
    const { router, member, seen } = await masterAndMember({ master: masterKeys, member: memberKeys });

    expect((await router.forward(peerAt(member), call)).body.toString()).toBe("renter=5Renter");
    expect(seen.at(-1)![FORWARD_HEADERS.key]).toBe("00000000000000aa");

    memberKeys.forget(masterNode.nodeId);
    const r = await router.forward(peerAt(member), call);
    expect([r.status, r.body.toString()]).toEqual([201, "renter=5Renter"]);
    // The MAC refused (401), then the same call signed by the node key, accepted.
    expect(seen.slice(-2).map((h) => h[FORWARD_HEADERS.key])).toEqual(["00000000000000aa", undefined]);
  });
});
