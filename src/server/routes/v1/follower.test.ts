import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import type { ForwardCall } from "../../../group/forward.js";
import type { GroupPeer } from "../../../group/master-role.js";
import { readOnlyVms } from "../../../vm/testing.js";
import { openDb } from "../../../store/db.js";
import { RenterAuthority } from "../../../auth/authorize.js";
import { cryptoWaitReady, testWallet, walletIdentity, type TestWallet } from "../../../auth/testing.js";
import { recordingRouter, testV1Deps } from "./testing.js";
import { v1Routes } from "./plugin.js";
import { ApiError } from "../../../api/errors.js";

const MASTERS = "a".repeat(64);
const MEMBER = "b".repeat(64);
const JOINED_ELSEWHERE = "c".repeat(64);
const peer: GroupPeer = { nodeId: MEMBER, address: "127.0.0.1:1", nickname: "m", state: "alive", lastSeen: new Date().toISOString(), capacity: null, tls: null };

/** What reached the member, and what was passed to the leader (the body as sent on). */
const forwarded: ForwardCall[] = [];
const passed: { url: string; bodyText: string }[] = [];
let following = true;
let leaderless = false;
let app: FastifyInstance;
let alice: TestWallet;
let authority: RenterAuthority;

beforeAll(async () => {
  await cryptoWaitReady();
  alice = testWallet("//follower-alice");
  const db = openDb(":memory:");
  authority = RenterAuthority.open(db);
  authority.rentals.grant(MEMBER, { wallet: alice.address }, new Date(Date.now() + 3600_000));
  const deps = testV1Deps(readOnlyVms(), {
    nodeId: MASTERS,
    // The follower's copy of the rentals, sessions and used nonces: a real store.
    renters: {
      authorize: (body, nodeId) => authority.authorize(body, nodeId).renterId,
      sessionId: (body, nodeId) => authority.sessionId(body, nodeId).session_id,
      nodeState: () => "rented",
    },
    group: {
      router: recordingRouter(peer, forwarded, '{"errcode":0,"message":"from the member"}'),
      peers: () => [peer],
      leader: {
        follows: () => following,
        passOn: async (req, reply, bodyText) => {
          if (leaderless) throw new ApiError("not_leader", "the group's leader at 10.0.0.1 could not be reached: ECONNREFUSED");
          passed.push({ url: req.url, bodyText });
          reply.hijack();
          reply.raw.writeHead(200, { "content-type": "application/json" });
          reply.raw.end('{"errcode":0,"message":"from the leader"}');
        },
      },
    },
  });
  app = Fastify();
  await app.register(v1Routes, { prefix: "/api/v1", deps });
});
afterAll(() => app.close());
beforeEach(() => {
  forwarded.length = 0;
  passed.length = 0;
  following = true;
  leaderless = false;
});

const post = (path: string, payload: Record<string, unknown>) => app.inject({ method: "POST", url: `/api/v1/${path}`, payload });
const call = (path: string, identity: Record<string, unknown>, node = MEMBER, additional: Record<string, unknown> = {}) =>
  post(path, { peer_nodes_list: [node], additional, ...identity });

describe("a follower of several masters", () => {
  it("answers a call it only routes to a member: checked on its copy, forwarded with the nonces, not passed to the leader", async () => {
    const identity = walletIdentity(alice);
    const r = await call("tasks", identity);
    expect(r.json()).toEqual({ errcode: 0, message: "from the member" });
    expect(passed).toHaveLength(0);
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]!.renter).toBe(alice.address);
    expect(JSON.parse(forwarded[0]!.bodyText).batu_nonces).toEqual([{ signer: alice.publicKeyHex.slice(2), nonce: identity.nonce }]);
  });

  it("refuses a replay of such a call itself: its nonce was burnt in its own store, nothing is forwarded or passed on", async () => {
    const identity = walletIdentity(alice);
    expect((await call("tasks/t1", identity)).json().errcode).toBe(0);
    forwarded.length = 0;
    const replay = await call("tasks/t1", identity);
    expect(replay.json().message).toContain("nonce is already exist");
    expect(forwarded).toHaveLength(0);
    expect(passed).toHaveLength(0);
  });

  it("answers a session call routed to a member from its copy of the sessions", async () => {
    const session = authority.sessionId({ peer_nodes_list: [MEMBER], additional: {}, ...walletIdentity(alice) }, MEMBER).session_id;
    const r = await call("tasks", { session_id: session, session_id_sign: alice.sign(session) });
    expect(r.json().message).toBe("from the member");
    expect(passed).toHaveLength(0);
  });

  it("passes to the leader, with the body as received, what writes the group's tables or what a master answers itself", async () => {
    const cases: [string, Record<string, unknown>][] = [
      // A session id is created (renter_sessions) and its nonce is one only a master burns.
      ["mining_nodes/session_id", { peer_nodes_list: [MEMBER], additional: {}, ...walletIdentity(alice) }],
      // A task on a LAN network takes an address from the group's registry.
      ["tasks/start", { peer_nodes_list: [MEMBER], additional: { network_name: "net1" }, ...walletIdentity(alice) }],
      // LAN networks are the group's registry.
      ["lan/create", { peer_nodes_list: [MEMBER], additional: { network_name: "net1" }, ...walletIdentity(alice) }],
      // The masters' own node, and a node this copy does not know (it may have joined a moment ago).
      ["tasks", { peer_nodes_list: [MASTERS], additional: {}, ...walletIdentity(alice) }],
      ["tasks", { peer_nodes_list: [JOINED_ELSEWHERE], additional: {}, ...walletIdentity(alice) }],
    ];
    for (const [path, payload] of cases) {
      passed.length = 0;
      const text = JSON.stringify(payload);
      const r = await app.inject({ method: "POST", url: `/api/v1/${path}`, payload: text, headers: { "content-type": "application/json" } });
      expect(r.json().message, path).toBe("from the leader");
      expect(passed, path).toEqual([{ url: `/api/v1/${path}`, bodyText: text }]);
    }
    expect(forwarded).toHaveLength(0);
  });

  it("passes on a call its copy of the rentals refuses: a grant may not have reached it yet", async () => {
    const bob = testWallet("//follower-bob");
    const r = await call("tasks", walletIdentity(bob));
    expect(r.json().message).toBe("from the leader");
    expect(forwarded).toHaveLength(0);
    // A bad signature is no question of the copy: refused here.
    passed.length = 0;
    const forged = await call("tasks", { ...walletIdentity(alice), sign: bob.sign("x") });
    expect(forged.json().message).toContain("verify sign failed");
    expect(passed).toHaveLength(0);
  });

  it("answers 503 and why when the leader cannot be reached: the renter retries", async () => {
    leaderless = true;
    const r = await call("mining_nodes/session_id", walletIdentity(alice));
    expect([r.statusCode, r.json()]).toEqual([503, { errcode: -1, message: "the group's leader at 10.0.0.1 could not be reached: ECONNREFUSED" }]);
  });

  it("while it leads, answers everything itself", async () => {
    following = false;
    const r = await call("mining_nodes/session_id", walletIdentity(alice));
    expect(r.json().errcode).toBe(0);
    expect(typeof r.json().message.session_id).toBe("string");
    expect(passed).toHaveLength(0);
  });
});
