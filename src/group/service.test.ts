import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { GroupHeartbeat, GroupHeartbeatReply, GroupJoin } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { memberJoinProof, memberKeyProof, newNonce, verifyMasterProof } from "./join-proof.js";
import { signHeartbeat } from "./heartbeat.js";
import { cryptoWaitReady, peerServer, testGroupService, testNode, TEST_CAPACITY } from "./testing.js";
import { nodeKeyAuthenticator, type Authenticator } from "../auth/signed-envelope.js";
import { WHOLE_NODE, type RentalGrants, type RentalTerms } from "../auth/rental-ledger.js";
import { openRentalTerms, rentalTermsDigest, sealRentalTerms } from "./rental-terms.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";

const TOKEN = "join-token-0123456789abcdef";
const capacity = { ...TEST_CAPACITY, vm_count: 1 };

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

beforeAll(async () => {
  await cryptoWaitReady();
});

/** The ApiError code a call throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return `${e.code}: ${e.message}`;
    throw e;
  }
  throw new Error("did not throw");
}

async function until<T>(read: () => T, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`not reached: ${JSON.stringify(v)}`);
    await sleep(20);
  }
}

const master = (rentalTerms?: (nodeId: string) => RentalTerms) =>
  testGroupService({ seed: 1, hostConfig: { host_type: "master", group_name: "g1" }, joinToken: TOKEN, ...(rentalTerms ? { rentalTerms } : {}) });

const ADMIN = "admin-token-0123456789abcdef";
/** The certificate members of these tests claim (nothing connects to them over TLS here). */
const TLS_SHA = "d".repeat(64);

/** A member's join body with a proof made with `token` for the master `masterNodeId`. */
function joinBody(masterNodeId: string, member: { nodeId: string; key: Authenticator }, token = TOKEN, address = "10.0.0.2:10000"): GroupJoin {
  const claim = { masterNodeId, nodeId: member.nodeId, address, nickname: "m", at: Date.now(), nonce: newNonce(), tlsPort: 10443, certSha256: TLS_SHA };
  return {
    node_id: member.nodeId,
    address: claim.address,
    nickname: claim.nickname,
    proof: { at: claim.at, nonce: claim.nonce, mac: memberJoinProof(token, claim) },
    key_proof: memberKeyProof(member.key, claim),
    tls_port: claim.tlsPort,
    cert_sha256: claim.certSha256,
  };
}

describe("GroupService as a master", () => {
  it("says who it is with a proof over the challenge and answers discovery; it has no master", () => {
    const { service, nodeId } = master();
    expect(service.isMaster).toBe(true);
    expect(verifyMasterProof(TOKEN, service.hello("c1"), "c1")).toBe(true);
    expect(service.discoveryIdentity()).toEqual({ nodeId, groupName: "g1", port: 10000, joinToken: TOKEN });
    expect(refusal(() => service.myMaster())).toBe("not_member: this host is a master, not a member of a group");
    expect(service.masterNodeId()).toBeUndefined();
    expect(service.followMaster({ address: "10.0.0.9:10000", nodeId, groupName: "g1" })).toBe(false);
  });

  it("records a join proven with the token, once; a bearer token works too, a wrong one never", () => {
    const { service, nodeId } = master();
    const member = testNode(2);
    const body = joinBody(nodeId, member);
    expect(service.recordJoin(body, "10.0.0.2", undefined)).toMatchObject({ message: "ok", group_name: "g1", node_id: nodeId, address: "10.0.0.2:10000" });
    expect(refusal(() => service.recordJoin(body, "10.0.0.2", undefined))).toBe("unauthorized: join refused: the join proof was replayed");
    expect(refusal(() => service.recordJoin(joinBody(nodeId, member, "another-token-0123456789"), "10.0.0.2", undefined))).toMatch(/^unauthorized: .*join token/);
    expect(refusal(() => service.recordJoin({ nickname: "x" }, "10.0.0.3", "wrong"))).toBe("unauthorized: wrong bearer token");
    expect(service.recordJoin({ nickname: "seed" }, "::ffff:10.0.0.3", TOKEN).address).toBe("10.0.0.3:10000");
    expect(service.list().member.map((m) => m.address)).toEqual(["10.0.0.2:10000", "10.0.0.3:10000"]);
    expect(refusal(() => service.recordJoin(joinBody(nodeId, testNode(1)), "10.0.0.4", undefined))).toBe("conflict: a host cannot join its own group");
  });

  it("accepts signed heartbeats of its members only, routes to them, and forgets a removed one", () => {
    const { service, nodeId } = master();
    const member = testNode(2);
    service.recordJoin(joinBody(nodeId, member), "10.0.0.2", undefined);
    const beat = (sentAt: number) =>
      signHeartbeat({ node_id: member.nodeId, address: "10.0.0.5:10000", nickname: "m", sent_at: sentAt, capacity }, member.key);
    const hb: GroupHeartbeat = beat(Date.now());
    // The member moved to a new IP (DHCP): its heartbeat from there moves it.
    // The member holds no terms yet: they come, signed; once it holds them, they are not sent again.
    // One member, at most 100 beats a second: it may beat every 10 ms ± 25 % (its own period is longer).
    const paced = expect.toSatisfy((ms: number) => ms >= 7 && ms <= 13);
    expect(service.recordHeartbeat(hb, "10.0.0.5")).toEqual({ message: "ok", rental_terms: { renters: [], signature: expect.stringMatching(/^0x/) }, next_beat_ms: paced });
    const current = { ...beat(Date.now() + 1), rental_terms_digest: rentalTermsDigest(new Map()) };
    expect(service.recordHeartbeat(current, "10.0.0.5")).toEqual({ message: "ok", next_beat_ms: paced });
    expect(refusal(() => service.recordHeartbeat(hb, "10.0.0.5"))).toMatch(/^unauthorized: heartbeat refused: replayed/);
    expect(service.peer(member.nodeId)).toMatchObject({ address: "10.0.0.5:10000", state: "alive", capacity });
    expect(service.peers()).toHaveLength(1);
    expect(service.remove({ node_id: member.nodeId })).toEqual({ message: "ok", address: "10.0.0.5:10000", node_id: member.nodeId });
    expect(refusal(() => service.recordHeartbeat(beat(Date.now() + 2), "10.0.0.5"))).toMatch(/^not_found: heartbeat refused: this node is not a member/);
    expect(service.peer(member.nodeId)).toBeUndefined();
  });
});

describe("GroupService: a master paces its members' heartbeats", () => {
  it("tells a large group to beat less often, and calls a paced member suspect only after as many missed beats", () => {
    let now = Date.now();
    // 40 members, at most 4 beats a second: each is told to wait 10 s between beats.
    const { service, nodeId } = testGroupService({ seed: 1, hostConfig: { host_type: "master", group_name: "g1" }, joinToken: TOKEN, maxHeartbeatsPerS: 4, now: () => new Date(now) });
    const member = testNode(2);
    service.recordJoin(joinBody(nodeId, member), "10.0.0.2", undefined);
    for (let i = 3; i <= 41; i++) service.recordJoin({ nickname: `m${i}` }, `10.0.1.${i}`, TOKEN);
    const hb = signHeartbeat({ node_id: member.nodeId, address: "10.0.0.2:10000", nickname: "m", sent_at: now, capacity }, member.key);
    expect(service.recordHeartbeat(hb, "10.0.0.2").next_beat_ms).toSatisfy((ms: number) => ms >= 7_500 && ms <= 12_500);
    // Unpaced, 10 s of silence is suspect (DEFAULT_LIVENESS). Told to wait up to 12.5 s (10 s ± 25 %),
    // a member is suspect after 41.7 s of silence, dead after 250 s.
    now += 41_000;
    expect(service.peer(member.nodeId)?.state).toBe("alive");
    now += 1_000;
    expect(service.peer(member.nodeId)?.state).toBe("suspect");
    now += 208_000;
    expect(service.peer(member.nodeId)?.state).toBe("dead");
  });

  it("keeps a small group's liveness times as configured", () => {
    let now = Date.now();
    const { service, nodeId } = testGroupService({ seed: 1, hostConfig: { host_type: "master", group_name: "g1" }, joinToken: TOKEN, now: () => new Date(now) });
    const member = testNode(2);
    service.recordJoin(joinBody(nodeId, member), "10.0.0.2", undefined);
    const hb = signHeartbeat({ node_id: member.nodeId, address: "10.0.0.2:10000", nickname: "m", sent_at: now, capacity }, member.key);
    expect(service.recordHeartbeat(hb, "10.0.0.2").next_beat_ms).toSatisfy((ms: number) => ms >= 7 && ms <= 13);
    now += 10_000;
    expect(service.peer(member.nodeId)?.state).toBe("suspect");
  });
});

describe("GroupService: a join proves the node key it claims", () => {
  it("refuses a join without the key's proof, with another key's, and a token-bearer join naming a node id", () => {
    const { service, nodeId } = master();
    const victim = testNode(2);
    service.recordJoin(joinBody(nodeId, victim), "10.0.0.2", undefined);
    // A join-token holder claims the victim's node id from its own address, with its own key.
    const thief = testNode(6);
    const stolen = joinBody(nodeId, { nodeId: victim.nodeId, key: thief.key }, TOKEN, "10.0.0.66:10000");
    expect(refusal(() => service.recordJoin(stolen, "10.0.0.66", undefined))).toBe("unauthorized: join refused: key_proof does not prove the key of node_id");
    const { key_proof: _k, ...noKey } = joinBody(nodeId, victim, TOKEN, "10.0.0.66:10000");
    expect(refusal(() => service.recordJoin(noKey, "10.0.0.66", undefined))).toMatch(/^unauthorized: join refused: key_proof/);
    expect(refusal(() => service.recordJoin({ node_id: victim.nodeId, address: "10.0.0.66:10000" }, "10.0.0.66", TOKEN))).toMatch(/^bad_request: node_id: /);
    // The victim stays where it joined from.
    expect(service.peer(victim.nodeId)?.address).toBe("10.0.0.2:10000");
  });
});

describe("GroupService: the address a member may have", () => {
  it("is on the IP it calls from: never another host, never another member's, never a port out of range", () => {
    const { service, nodeId } = master();
    const [a, b] = [testNode(2), testNode(4)];
    service.recordJoin(joinBody(nodeId, a), "10.0.0.2", undefined);
    service.recordJoin(joinBody(nodeId, b, TOKEN, "10.0.0.4:10000"), "10.0.0.4", undefined);
    let t = Date.now();
    const beat = (node: typeof a, address: string) =>
      signHeartbeat({ node_id: node.nodeId, address, nickname: "m", sent_at: ++t, capacity }, node.key);
    // A join naming another host (SSRF: the master would connect there and relay the reply).
    expect(refusal(() => service.recordJoin(joinBody(nodeId, testNode(5), TOKEN, "127.0.0.1:22"), "10.0.0.9", undefined))).toMatch(
      /^bad_request: address: a member registers the address it calls from \(10\.0\.0\.9\)/,
    );
    expect(refusal(() => service.recordHeartbeat(beat(a, "127.0.0.1:22"), "10.0.0.2"))).toMatch(/^bad_request: address: a member registers/);
    expect(refusal(() => service.recordHeartbeat(beat(a, "10.0.0.2:99999"), "10.0.0.2"))).toBe("bad_request: address: port 99999 is not 1-65535");
    // Another member's address, even sent from its IP: refused, and that member's record stays.
    expect(refusal(() => service.recordHeartbeat(beat(a, "10.0.0.4:10000"), "10.0.0.4"))).toBe("conflict: address: 10.0.0.4:10000 is another member's");
    expect(service.peer(b.nodeId)?.address).toBe("10.0.0.4:10000");
    expect(service.peer(a.nodeId)?.address).toBe("10.0.0.2:10000");
    // The operator (admin token) may record any host, as seed 000's join did.
    expect(service.recordJoin({ address: "10.1.2.3:10000", nickname: "by hand" }, "127.0.0.1", ADMIN).address).toBe("10.1.2.3:10000");
  });
});

describe("GroupService in no group", () => {
  it("refuses the master's and the member's calls, but still authenticates a join first", () => {
    const { service } = testGroupService({ seed: 3, hostConfig: { host_type: "none" } });
    expect(refusal(() => service.hello("c"))).toMatch(/^not_master/);
    expect(refusal(() => service.list())).toMatch(/^not_master/);
    expect(refusal(() => service.myMaster())).toBe("not_member: this host is not in a group");
    expect(refusal(() => service.recordJoin({}, "10.0.0.2", "wrong"))).toBe("unauthorized: wrong bearer token");
    expect(refusal(() => service.recordJoin({}, "10.0.0.2", TOKEN))).toMatch(/^not_master/);
    expect(service.peers()).toEqual([]);
    expect(service.discoveryIdentity()).toBeNull();
  });
});

describe("GroupService becoming a member", () => {
  /** A master's service behind a tiny HTTP and TLS server, as the member's calls reach it. */
  async function servedMaster(
    opts: {
      rentalTerms?: (nodeId: string) => RentalTerms;
      rentalGrants?: (nodeId: string) => RentalGrants;
      answer?: (reply: GroupHeartbeatReply) => GroupHeartbeatReply;
      now?: () => Date;
    } = {},
  ) {
    let tls: TlsEndpoint | undefined;
    const m = testGroupService({
      seed: 1,
      hostConfig: { host_type: "master", group_name: "g1" },
      joinToken: TOKEN,
      tls: () => tls,
      ...(opts.rentalTerms ? { rentalTerms: opts.rentalTerms } : {}),
      ...(opts.rentalGrants ? { rentalGrants: opts.rentalGrants } : {}),
      ...(opts.now ? { now: opts.now } : {}),
    });
    const answer = opts.answer ?? ((r) => r);
    const peer = await peerServer({
      "GET /master/group/hello": (_b, req) => m.service.hello(new URL(req.url!, "http://x").searchParams.get("challenge") ?? ""),
      "POST /master/group/join": (body, req) => m.service.recordJoin(body as GroupJoin, req.socket.remoteAddress ?? "", undefined),
      "POST /master/group/heartbeat": (body, req) => answer(m.service.recordHeartbeat(body as GroupHeartbeat, req.socket.remoteAddress ?? "")),
    });
    closers.push(peer.close);
    tls = peer.tls;
    return { ...m, address: peer.address, peer };
  }

  it("joins a master that proves the token, writes host_config.json, takes the member role and beats at once", async () => {
    const m = await servedMaster();
    const host = testGroupService({ seed: 2, hostConfig: { host_type: "master", group_name: "own" }, joinToken: "its-own-token-0123456789" });
    host.service.start({ intervalMs: 50, capacity: async () => capacity });
    closers.push(() => host.service.stop());
    const reply = await host.service.becomeMember({ master: m.address, token: TOKEN });
    expect(reply).toEqual({ message: "ok", master: m.address, address: "127.0.0.1:10000", group_name: "g1" });
    const written = { host_type: "slave", master: m.address, have_group: true, group_name: "g1", master_node_id: m.nodeId };
    expect(JSON.parse(readFileSync(join(host.confDir, "host_config.json"), "utf8"))).toEqual(written);
    expect(host.service.hostConfig).toEqual(written);
    // The member role now: the master's calls are refused, the master's forwarded calls accepted.
    expect(host.service.isMaster).toBe(false);
    expect(refusal(() => host.service.hello("c"))).toMatch(/^not_master/);
    expect(host.service.discoveryIdentity()).toBeNull();
    expect(host.service.masterNodeId()).toBe(m.nodeId);
    const mine = await until(() => host.service.myMaster(), (r) => r.reachable);
    expect(mine).toMatchObject({ message: "ok", master: m.address, last_error: null });
    expect(m.service.list().member).toEqual([expect.objectContaining({ node_id: host.nodeId, state: "alive", capacity })]);
  });

  it("takes the rental terms its master signs in heartbeat answers, and only those", async () => {
    const renter = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    let terms: RentalTerms = new Map([[renter, "2030-01-01T00:00:00.000Z"]]);
    const m = await servedMaster({ rentalTerms: () => terms });
    const host = testGroupService({ seed: 2, hostConfig: { host_type: "none" } });
    let changes = 0;
    host.service.onRentalTermsChange(() => changes++);
    host.service.start({ intervalMs: 30, capacity: async () => capacity });
    closers.push(() => host.service.stop());
    expect(host.service.ownRentalTerms()).toEqual(new Map()); // in no group: its own (empty) ledger's
    await host.service.becomeMember({ master: m.address, token: TOKEN });
    expect(await until(() => host.service.ownRentalTerms(), (t) => t?.get(renter) === "2030-01-01T00:00:00.000Z")).toBeDefined();
    // A revocation on the master reaches the member with the next answer, and tells its listeners once.
    const before = changes;
    terms = new Map([[renter, "2024-01-01T00:00:00.000Z"]]);
    await until(() => host.service.ownRentalTerms()?.get(renter), (t) => t === "2024-01-01T00:00:00.000Z");
    await sleep(100);
    expect(changes).toBe(before + 1);
  });

  it("refuses rental terms not signed by its master's key (another key, another member's, a forged list)", async () => {
    const renter = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const other = testNode(7);
    const tampered: Array<(r: GroupHeartbeatReply, memberId: string, sentAt: number) => GroupHeartbeatReply> = [
      // signed by a key that is not the master's
      (r, memberId, sentAt) => ({ ...r, rental_terms: sealRentalTerms(new Map([[renter, "2024-01-01T00:00:00.000Z"]]), memberId, sentAt, other.key) }),
      // the master's signature over another list
      (r) => ({ ...r, rental_terms: { ...r.rental_terms!, renters: [{ renter, ends_at: "2024-01-01T00:00:00.000Z" }] } }),
    ];
    for (const tamper of tampered) {
      let lastBody: GroupHeartbeat | undefined;
      const m = await servedMaster({
        rentalTerms: () => new Map([[renter, "2030-01-01T00:00:00.000Z"]]),
        answer: (r) => tamper(r, lastBody!.node_id, lastBody!.sent_at),
      });
      const peerBeat = m.service.recordHeartbeat.bind(m.service);
      m.service.recordHeartbeat = (hb, ip) => ((lastBody = hb), peerBeat(hb, ip));
      const host = testGroupService({ seed: 2, hostConfig: { host_type: "none" } });
      host.service.start({ intervalMs: 30, capacity: async () => capacity });
      closers.push(() => host.service.stop());
      await host.service.becomeMember({ master: m.address, token: TOKEN });
      await until(() => host.service.myMaster(), (r) => r.reachable);
      await sleep(100);
      expect(host.service.ownRentalTerms()).toBeUndefined();
    }
    // An answer made for another member's heartbeat does not pass for this one's.
    const m = master(() => new Map([[renter, "2030-01-01T00:00:00.000Z"]]));
    const signed = sealRentalTerms(new Map([[renter, "2030-01-01T00:00:00.000Z"]]), other.nodeId, 1, testNode(1).key);
    expect(openRentalTerms(signed, testNode(2).nodeId, 1, nodeKeyAuthenticator(m.nodeId))).toBeUndefined();
    expect(openRentalTerms(signed, other.nodeId, 2, nodeKeyAuthenticator(m.nodeId))).toBeUndefined();
    expect(openRentalTerms(signed, other.nodeId, 1, nodeKeyAuthenticator(m.nodeId))).toEqual({ renters: new Map([[renter, "2030-01-01T00:00:00.000Z"]]), grants: undefined });
  });

  it("keeps the terms and grants it accepted across its restart, while the master is down; a tampered file authorizes nothing", async () => {
    const renter = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const grants: RentalGrants = new Map([[renter, { limits: { ...WHOLE_NODE, gpus: 1 } }]]);
    const m = await servedMaster({ rentalTerms: () => new Map([[renter, "2030-01-01T00:00:00.000Z"]]), rentalGrants: () => grants });
    const host = testGroupService({ seed: 2, hostConfig: { host_type: "none" } });
    host.service.start({ intervalMs: 30, capacity: async () => capacity });
    await host.service.becomeMember({ master: m.address, token: TOKEN });
    const held = await until(() => host.service.memberTerms(), (t) => t !== undefined);
    expect(held).toEqual({ renters: new Map([[renter, "2030-01-01T00:00:00.000Z"]]), grants });
    host.service.stop();
    await m.peer.close();
    // The member restarted, its master gone: the same terms, from conf/rental_terms.json.
    const config = JSON.parse(readFileSync(join(host.confDir, "host_config.json"), "utf8"));
    const again = testGroupService({ seed: 2, hostConfig: config, confDir: host.confDir });
    expect(again.service.memberTerms()).toEqual(held);
    expect(again.service.ownRentalTerms()).toEqual(held!.renters);
    // Edited by hand (a later end): no longer the master's signature, so nothing is held.
    const file = join(host.confDir, "rental_terms.json");
    const kept = JSON.parse(readFileSync(file, "utf8"));
    kept.rental_terms.renters[0].ends_at = "2040-01-01T00:00:00.000Z";
    writeFileSync(file, JSON.stringify(kept));
    expect(testGroupService({ seed: 2, hostConfig: config, confDir: host.confDir }).service.memberTerms()).toBeUndefined();
  });

  it("terms are signed only when they change: with grants, under either version's digest; grantless terms are asked for again after 10 minutes", async () => {
    const renter = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    let clock = Date.now();
    const now = () => new Date(clock);
    for (const grants of [new Map([[renter, { limits: WHOLE_NODE }]]), undefined]) {
      let sent = 0;
      const m = await servedMaster({
        rentalTerms: () => new Map([[renter, "2030-01-01T00:00:00.000Z"]]),
        ...(grants ? { rentalGrants: () => grants } : {}),
        answer: (r) => ((sent += r.rental_terms ? 1 : 0), r),
        now,
      });
      const host = testGroupService({ seed: 2, hostConfig: { host_type: "none" }, now });
      host.service.start({ intervalMs: 20, capacity: async () => capacity });
      closers.push(() => host.service.stop());
      await host.service.becomeMember({ master: m.address, token: TOKEN });
      await until(() => host.service.memberTerms(), (t) => t !== undefined);
      await sleep(200);
      expect(sent).toBe(1);
      // Ten minutes on: grantless terms are asked for once more (a master upgraded since would add the grants).
      clock += 11 * 60_000;
      await sleep(300);
      expect(sent).toBe(grants ? 1 : 2);
      host.service.stop();
    }
  });

  it("follows its master to a new address only for the same node id", async () => {
    const m = await servedMaster();
    const host = testGroupService({ seed: 2, hostConfig: { host_type: "none" } });
    await host.service.becomeMember({ master: m.address, token: TOKEN });
    expect(host.service.followMaster({ address: "10.9.9.9:10000", nodeId: testNode(9).nodeId, groupName: "g1" })).toBe(false);
    expect(host.service.followMaster({ address: m.address, nodeId: m.nodeId, groupName: "g1" })).toBe(false);
    expect(host.service.followMaster({ address: "10.9.9.9:10000", nodeId: m.nodeId, groupName: "g1" })).toBe(true);
    expect(host.service.hostConfig).toMatchObject({ master: "10.9.9.9" });
    expect(JSON.parse(readFileSync(join(host.confDir, "host_config.json"), "utf8"))).toMatchObject({ master: "10.9.9.9" });
  });

  it("refuses a master that does not hold the token, and changes nothing", async () => {
    const m = await servedMaster();
    const host = testGroupService({ seed: 2, hostConfig: { host_type: "master", group_name: "own" } });
    await expect(host.service.becomeMember({ master: m.address, token: "another-token-0123456789" })).rejects.toMatchObject({
      code: "upstream_refused",
    });
    expect(host.service.isMaster).toBe(true);
    expect(host.service.hostConfig).toEqual({ host_type: "master", group_name: "own" });
    expect(m.service.list().member).toEqual([]);
  });
});

describe("group list for large groups", () => {
  it("filters by state and pages by address, with total and next; an unknown cursor is a 400 naming `after`", () => {
    let clock = new Date("2026-01-01T00:10:00Z");
    const { service, members } = testGroupService({ seed: 1, hostConfig: { host_type: "master", group_name: "g1" }, now: () => clock });
    // Five members; two minutes later three are seen again, two silent (dead after the default minute).
    for (let i = 1; i <= 5; i++) members.upsert({ address: `10.0.0.${i}:10000`, nodeId: String(i).repeat(64) }, clock);
    clock = new Date(clock.getTime() + 120_000);
    for (let i = 1; i <= 3; i++) members.upsert({ address: `10.0.0.${i}:10000`, nodeId: String(i).repeat(64) }, clock);
    expect(service.list().member).toHaveLength(5);
    expect(service.list().total).toBeUndefined();

    const first = service.list({ limit: 2 });
    expect([first.member.map((m) => m.address), first.total, first.next]).toEqual([["10.0.0.1:10000", "10.0.0.2:10000"], 5, "10.0.0.2:10000"]);
    const second = service.list({ limit: 2, after: first.next! });
    expect(second.member.map((m) => m.address)).toEqual(["10.0.0.3:10000", "10.0.0.4:10000"]);
    const last = service.list({ limit: 2, after: second.next! });
    expect([last.member.map((m) => m.address), last.next]).toEqual([["10.0.0.5:10000"], null]);

    const dead = service.list({ state: "dead" });
    expect([dead.member.map((m) => m.address), dead.total]).toEqual([["10.0.0.4:10000", "10.0.0.5:10000"], 2]);
    expect(dead.members).toBe(dead.member);
    expect(() => service.list({ state: "dead", after: "10.0.0.1:10000" })).toThrow(/^after: no member at 10\.0\.0\.1:10000/);
  });
});
