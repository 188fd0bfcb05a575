import { beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady, sr25519PairFromSeed, sr25519Sign } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { HeartbeatVerifier, signHeartbeat } from "./heartbeat.js";
import { ForwardVerifier, signForward } from "./forward.js";
import { nodeKeyAuthenticator } from "../auth/signed-envelope.js";

let pair: ReturnType<typeof sr25519PairFromSeed>;
let other: ReturnType<typeof sr25519PairFromSeed>;
const idOf = (p: typeof pair) => u8aToHex(p.publicKey, undefined, false);
const t0 = new Date("2025-01-01T00:00:00Z");

beforeAll(async () => {
  await cryptoWaitReady();
  pair = sr25519PairFromSeed(new Uint8Array(32).fill(1));
  other = sr25519PairFromSeed(new Uint8Array(32).fill(2));
});

const capacity = {
  cpu_threads: 4,
  memory_total_bytes: 8,
  memory_available_bytes: 4,
  disk_total_bytes: 100,
  disk_free_bytes: 50,
  gpu_total: 0,
  gpu_free: 0,
  vm_count: 0,
  version: "0.1.0",
};
const beat = (sentAt: number, signer = pair) =>
  signHeartbeat({ node_id: idOf(pair), address: "10.0.0.2:10000", nickname: "m", sent_at: sentAt, capacity }, nodeKeyAuthenticator(idOf(signer), (m) => sr25519Sign(m, signer)));

describe("HeartbeatVerifier", () => {
  it("accepts a fresh heartbeat signed by its node, then refuses its replay", () => {
    const v = new HeartbeatVerifier();
    const hb = beat(t0.getTime());
    expect(() => v.verify(hb, t0)).not.toThrow();
    expect(() => v.verify(hb, t0)).toThrow(/replayed/);
    expect(() => v.verify(beat(t0.getTime() + 1), t0)).not.toThrow();
  });

  it("refuses a stale one, another key's signature, and any field changed after signing", () => {
    const v = new HeartbeatVerifier();
    expect(() => v.verify(beat(t0.getTime() - 31_000), t0)).toThrow(/30 s/);
    expect(() => v.verify(beat(t0.getTime(), other), t0)).toThrow(/signature/);
    const hb = beat(t0.getTime());
    expect(() => v.verify({ ...hb, capacity: { ...capacity, vm_count: 9 } }, t0)).toThrow(/signature/);
    expect(() => v.verify({ ...hb, address: "10.0.0.66:10000" }, t0)).toThrow(/signature/);
  });

  it("covers the TLS endpoint a member names: the master pins no certificate its key did not sign", () => {
    const v = new HeartbeatVerifier();
    const key = nodeKeyAuthenticator(idOf(pair), (m) => sr25519Sign(m, pair));
    const tls = { tls_port: 10443, cert_sha256: "d".repeat(64) };
    const hb = signHeartbeat({ node_id: idOf(pair), address: "10.0.0.2:10000", nickname: "m", sent_at: t0.getTime(), capacity, ...tls }, key);
    expect(() => v.verify({ ...hb, cert_sha256: "e".repeat(64) }, t0)).toThrow(/signature/);
    expect(() => v.verify({ ...hb, tls_port: 443 }, t0)).toThrow(/signature/);
    const { tls_port: _p, cert_sha256: _c, ...withoutTls } = hb;
    expect(() => v.verify(withoutTls, t0)).toThrow(/signature/);
    expect(() => v.verify(hb, t0)).not.toThrow();
  });
});

describe("ForwardVerifier", () => {
  const call = { method: "POST", url: "/api/v1/tasks", bodyText: '{"peer_nodes_list":["x"]}', renter: "5Alice" };
  const sign = (p: typeof pair) => nodeKeyAuthenticator(idOf(p), (m: string) => sr25519Sign(m, p));

  it("accepts its master's signed call once and yields the renter", () => {
    const v = new ForwardVerifier(() => idOf(pair), () => t0);
    const h = signForward(call, idOf(pair), sign(pair), t0);
    expect(v.verify(h, call.method, call.url, call.bodyText)).toBe("5Alice");
    expect(() => v.verify(h, call.method, call.url, call.bodyText)).toThrow(/replayed/);
  });

  it("still refuses a replay inside the window after older nonces were dropped", () => {
    let now = t0;
    const v = new ForwardVerifier(() => idOf(pair), () => now);
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    const first = signForward(call, idOf(pair), sign(pair), at(0));
    expect(v.verify(first, call.method, call.url, call.bodyText)).toBe("5Alice");
    now = at(40);
    const second = signForward(call, idOf(pair), sign(pair), at(40));
    expect(v.verify(second, call.method, call.url, call.bodyText)).toBe("5Alice");
    now = at(65); // the first nonce is dropped here (kept 60 s), the second is not
    expect(() => v.verify(second, call.method, call.url, call.bodyText)).toThrow(/replayed/);
    expect(() => v.verify(first, call.method, call.url, call.bodyText)).toThrow(/stale/);
  });

  it("refuses another node, a changed body or path, and a stale call", () => {
    const v = new ForwardVerifier(() => idOf(pair), () => t0);
    expect(() => v.verify(signForward(call, idOf(other), sign(other), t0), call.method, call.url, call.bodyText)).toThrow(/master/);
    // Claims to be the master, signed by another key.
    expect(() => v.verify(signForward(call, idOf(pair), sign(other), t0), call.method, call.url, call.bodyText)).toThrow(/signature/);
    const h = signForward(call, idOf(pair), sign(pair), t0);
    expect(() => v.verify(h, call.method, call.url, call.bodyText + " ")).toThrow(/signature/);
    expect(() => v.verify(h, call.method, "/api/v1/tasks/delete/x", call.bodyText)).toThrow(/signature/);
    const old = signForward(call, idOf(pair), sign(pair), new Date(t0.getTime() - 31_000));
    expect(() => v.verify(old, call.method, call.url, call.bodyText)).toThrow(/stale/);
  });
});
