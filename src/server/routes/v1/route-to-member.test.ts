import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import type { ForwardCall } from "../../../group/forward.js";
import type { GroupPeer } from "../../../group/master-role.js";
import { readOnlyVms } from "../../../vm/testing.js";
import { recordingRouter, testV1Deps } from "./testing.js";
import { v1Routes } from "./plugin.js";

const MASTER = "a".repeat(64);
const MEMBER = "b".repeat(64);
const peer: GroupPeer = { nodeId: MEMBER, address: "127.0.0.1:1", nickname: "m", state: "alive", lastSeen: new Date().toISOString(), capacity: null, tls: null };
const forwarded: ForwardCall[] = [];
let app: FastifyInstance;

beforeAll(async () => {
  const deps = testV1Deps(readOnlyVms(), {
    nodeId: MASTER,
    // Authentication is not what this file tests: every caller is renter-1.
    renters: { authorize: () => "renter-1", sessionId: () => "s", nodeState: () => "rented" },
    group: { router: recordingRouter(peer, forwarded, '{"errcode":0,"message":"ok"}'), peers: () => [peer] },
  });
  app = Fastify();
  await app.register(v1Routes, { prefix: "/api/v1", deps });
});
afterAll(() => app.close());

const credentials = {
  wallet: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
  nonce: "n1",
  sign: "0x" + "1".repeat(128),
  session_id: "sid",
  session_id_sign: "0x" + "2".repeat(128),
  multisig_accounts: { wallets: ["w"], threshold: "1", signs: [{ wallet: "w", nonce: "n", sign: "s" }] },
};

describe("a master forwarding a renter's call to a member", () => {
  it("sends the renter id it vouches for and the signers' nonces (to burn), never the renter's signatures or session", async () => {
    for (const path of ["tasks", "tasks/start", "tasks/t1", "tasks/shutdown/t1", "operations/op-1", "mining_nodes/free_memory"]) {
      forwarded.length = 0;
      const r = await app.inject({ method: "POST", url: `/api/v1/${path}`, payload: { peer_nodes_list: [MEMBER], additional: { x: 1 }, rent_order: "7", ...credentials } });
      expect(r.statusCode, path).toBe(200);
      expect(forwarded, path).toHaveLength(1);
      expect(forwarded[0]!.renter, path).toBe("renter-1");
      // The wallet's public key and its nonce (the multisig set here is malformed: none of its own).
      const batu_nonces = [{ signer: "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", nonce: "n1" }];
      expect(JSON.parse(forwarded[0]!.bodyText), path).toEqual({ peer_nodes_list: [MEMBER], additional: { x: 1 }, rent_order: "7", batu_nonces });
    }
  });

  it("asks node info for no one", async () => {
    forwarded.length = 0;
    await app.inject({ method: "POST", url: "/api/v1/mining_nodes", payload: { peer_nodes_list: [MEMBER], additional: {} } });
    expect(forwarded[0]!.renter).toBeNull();
  });
});
