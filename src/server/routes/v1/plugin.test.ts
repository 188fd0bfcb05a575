import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import { cryptoWaitReady, sr25519PairFromSeed, sr25519Sign } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { readOnlyVms } from "../../../vm/testing.js";
import { GroupRouter, signForward } from "../../../group/forward.js";
import { nodeKeyAuthenticator, type Authenticator } from "../../../auth/signed-envelope.js";
import { testV1Deps } from "./testing.js";
import { v1Routes } from "./plugin.js";

const NODE = "e".repeat(64);
let masterId: string;
let masterKey: Authenticator;
let member: FastifyInstance;
// The same routes without a group: Fastify's own JSON parser, the reference for parse errors.
let lone: FastifyInstance;

beforeAll(async () => {
  await cryptoWaitReady();
  const pair = sr25519PairFromSeed(new Uint8Array(32).fill(7));
  masterId = u8aToHex(pair.publicKey, undefined, false);
  masterKey = nodeKeyAuthenticator(masterId, (m) => sr25519Sign(m, pair));
  const deps = testV1Deps(readOnlyVms(), {
    nodeId: NODE,
    renters: {
      authorize: () => {
        throw new Error("a direct call: not what this file tests");
      },
      sessionId: () => "",
      nodeState: () => "rented",
    },
  });
  const router = new GroupRouter({ nodeId: NODE, key: nodeKeyAuthenticator(NODE), peer: () => undefined, masterNodeId: () => masterId });
  member = Fastify();
  await member.register(v1Routes, { prefix: "/api/v1", deps: { ...deps, group: { router, peers: () => [] } } });
  lone = Fastify();
  await lone.register(v1Routes, { prefix: "/api/v1", deps });
});
afterAll(async () => {
  await member.close();
  await lone.close();
});

const bodyText = JSON.stringify({ peer_nodes_list: [NODE], additional: {} });

function forwarded(text: string, signedText = text) {
  const headers = signForward({ method: "POST", url: "/api/v1/tasks", bodyText: signedText, renter: "5Renter" }, masterId, masterKey, new Date());
  return member.inject({ method: "POST", url: "/api/v1/tasks", payload: text, headers: { ...headers, "content-type": "application/json" } });
}

describe("/api/v1 on a member: forwarded calls", () => {
  it("accepts a call its master signed, checked on the body text as sent", async () => {
    const r = await forwarded(bodyText);
    expect(r.json()).toEqual({ errcode: 0, message: [] });
  });

  it("refuses a body that differs from the signed text, even when it parses to the same JSON", async () => {
    const r = await forwarded(bodyText.replace(",", ", "), bodyText);
    expect(r.json()).toEqual({ errcode: -3, message: "check authority failed: forwarded call refused: bad signature" });
  });

  it("parses JSON exactly as Fastify's own parser: same errors for bad JSON and prototype poisoning", async () => {
    for (const payload of ["{not json", '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', ""]) {
      const send = (app: FastifyInstance) =>
        app.inject({ method: "POST", url: "/api/v1/tasks", payload, headers: { "content-type": "application/json" } });
      const [mine, reference] = await Promise.all([send(member), send(lone)]);
      expect(mine.statusCode).toBe(reference.statusCode);
      expect(mine.body).toBe(reference.body);
    }
  });
});
