import { beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import type { GroupSession } from "../api/host-group-session.js";
import { ForwardVerifier, signForward, FORWARD_HEADERS } from "./forward.js";
import { HeartbeatVerifier, macHeartbeat, signHeartbeat } from "./heartbeat.js";
import { openSession, SessionAnswerer } from "./session-exchange.js";
import { SESSION_GRACE_MS, SESSION_TTL_MS, SessionKeys, UNKNOWN_SESSION } from "./session-keys.js";
import { testNode, TEST_CAPACITY } from "./testing.js";

beforeAll(async () => {
  await cryptoWaitReady();
});

const t0 = new Date("2025-01-01T00:00:00Z");
const capacity = TEST_CAPACITY;

/** A master and a member, each with its node key and its own session store, on one clock. */
function pair() {
  let clock = t0.getTime();
  const master = testNode(1);
  const member = testNode(2);
  const masterKeys = new SessionKeys(() => clock);
  const memberKeys = new SessionKeys(() => clock);
  const answerer = new SessionAnswerer(masterKeys, master.key);
  const open = (send: (b: GroupSession) => ReturnType<SessionAnswerer["answer"]> = (b) => answerer.answer(b, new Date(clock))) =>
    openSession({ nodeId: member.nodeId, masterNodeId: master.nodeId, key: member.key, sessions: memberKeys, now: new Date(clock), send: async (b) => send(b) });
  return { master, member, masterKeys, memberKeys, answerer, open, tick: (ms: number) => (clock += ms), now: () => new Date(clock) };
}

describe("session keys", () => {
  it("an exchange signed by both node keys leaves both sides holding the same key, and a heartbeat MAC passes", async () => {
    const p = pair();
    await p.open();
    const held = p.memberKeys.current(p.master.nodeId)!;
    expect(held.id).toMatch(/^[0-9a-f]{16}$/);
    expect(p.masterKeys.get(p.member.nodeId, held.id)!.verify("m", held.key.sign("m"))).toBe(true);

    const v = new HeartbeatVerifier(p.masterKeys);
    const hb = macHeartbeat({ node_id: p.member.nodeId, address: "10.0.0.2:10000", nickname: "m", sent_at: p.now().getTime(), capacity }, held);
    expect(hb.signature).toBeUndefined();
    expect(() => v.verify(hb, p.now())).not.toThrow();
    expect(() => v.verify(hb, p.now())).toThrow(/replayed/);
    // Changed after the MAC: refused as any forged proof is.
    const later = macHeartbeat({ node_id: p.member.nodeId, address: "10.0.0.2:10000", nickname: "m", sent_at: p.now().getTime() + 1, capacity }, held);
    expect(() => v.verify({ ...later, nickname: "x" }, p.now())).toThrow(/does not match/);
    // A member of the first protocol still signs, and is accepted.
    const signed = signHeartbeat({ node_id: p.member.nodeId, address: "10.0.0.2:10000", nickname: "m", sent_at: p.now().getTime() + 2, capacity }, p.member.key);
    expect(() => v.verify(signed, p.now())).not.toThrow();
    expect(() => v.verify({ ...later, signature: signed.signature! }, p.now())).toThrow(/either signature, or key_id and mac/);
  });

  it("a master that lost its keys (restarted) refuses the MAC with the words that make the member open a new session", async () => {
    const p = pair();
    await p.open();
    const held = p.memberKeys.current(p.master.nodeId)!;
    const restarted = new HeartbeatVerifier(new SessionKeys());
    const hb = macHeartbeat({ node_id: p.member.nodeId, address: "10.0.0.2:10000", nickname: "m", sent_at: p.now().getTime(), capacity }, held);
    expect(() => restarted.verify(hb, p.now())).toThrow(UNKNOWN_SESSION);
  });

  it("refuses a request not signed by the member's node key, a replayed one, and an answer not signed by the master", async () => {
    const p = pair();
    const stranger = testNode(3);
    await expect(
      openSession({ nodeId: p.member.nodeId, masterNodeId: p.master.nodeId, key: stranger.key, sessions: p.memberKeys, now: p.now(), send: async (b) => p.answerer.answer(b, p.now()) }),
    ).rejects.toThrow(/signature does not match node_id/);
    let sent: GroupSession | undefined;
    await p.open((b) => {
      sent = b;
      return p.answerer.answer(b, p.now());
    });
    expect(() => p.answerer.answer(sent!, p.now())).toThrow(/replayed/);
    // An answer made by another master's key (a host between them): the member holds nothing from it.
    const impostor = new SessionAnswerer(new SessionKeys(), stranger.key);
    const fresh = new SessionKeys();
    p.tick(1);
    await expect(
      openSession({ nodeId: p.member.nodeId, masterNodeId: p.master.nodeId, key: p.member.key, sessions: fresh, now: p.now(), send: async (b) => impostor.answer(b, p.now()) }),
    ).rejects.toThrow(/not signed by its node key/);
    expect(fresh.current(p.master.nodeId)).toBeUndefined();
  });

  it("a renewed key takes over; the previous one stays good for the grace period only; a key ends with its time", async () => {
    const p = pair();
    await p.open();
    const first = p.memberKeys.current(p.master.nodeId)!.id;
    p.tick(SESSION_TTL_MS);
    await p.open();
    const second = p.memberKeys.current(p.master.nodeId)!.id;
    expect(second).not.toBe(first);
    expect(p.masterKeys.get(p.member.nodeId, first)).toBeDefined();
    p.tick(SESSION_GRACE_MS + 1);
    expect(p.masterKeys.get(p.member.nodeId, first)).toBeUndefined();
    expect(p.masterKeys.get(p.member.nodeId, second)).toBeDefined();
    p.tick(SESSION_TTL_MS);
    expect(p.masterKeys.get(p.member.nodeId, second)).toBeUndefined();
    expect(p.memberKeys.current(p.master.nodeId)).toBeUndefined();
  });

  it("forwarded calls carry a MAC with the session key; a member without that key refuses them with 401", async () => {
    const p = pair();
    await p.open();
    const call = { method: "POST", url: "/api/v1/tasks", bodyText: "{}", renter: "5Renter" };
    const session = p.masterKeys.current(p.member.nodeId)!;
    const headers = signForward(call, p.master.nodeId, p.master.key, p.now(), session);
    expect(headers[FORWARD_HEADERS.key]).toBe(session.id);
    const verifier = new ForwardVerifier(() => p.master.nodeId, p.now, undefined, p.memberKeys);
    expect(verifier.verify(headers, call.method, call.url, call.bodyText)).toBe("5Renter");
    expect(() => verifier.verify({ ...headers, [FORWARD_HEADERS.nonce]: "0".repeat(32) }, call.method, call.url, call.bodyText)).toThrow(/bad signature/);
    const restarted = new ForwardVerifier(() => p.master.nodeId, p.now, undefined, new SessionKeys());
    expect(() => restarted.verify(signForward(call, p.master.nodeId, p.master.key, p.now(), session), call.method, call.url, call.bodyText)).toThrow(
      expect.objectContaining({ httpStatus: 401, message: expect.stringContaining(UNKNOWN_SESSION) }),
    );
    // Signed by the node key (no session): accepted as before.
    expect(verifier.verify(signForward(call, p.master.nodeId, p.master.key, p.now()), call.method, call.url, call.bodyText)).toBe("5Renter");
  });
});
