import { beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady, sr25519PairFromSeed, sr25519Sign } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { EnvelopeChecker, hmacAuthenticator, nodeKeyAuthenticator, sealEnvelope, type Authenticator } from "./signed-envelope.js";
import { IncreasingCounters, WindowedNonces } from "./replay-store.js";

const t0 = new Date("2025-01-01T00:00:00Z");
const at = (s: number) => new Date(t0.getTime() + s * 1000);
let nodeKey: Authenticator;
let otherKey: Authenticator;

beforeAll(async () => {
  await cryptoWaitReady();
  const pair = sr25519PairFromSeed(new Uint8Array(32).fill(1));
  const other = sr25519PairFromSeed(new Uint8Array(32).fill(2));
  nodeKey = nodeKeyAuthenticator(u8aToHex(pair.publicKey, undefined, false), (m) => sr25519Sign(m, pair));
  otherKey = nodeKeyAuthenticator(u8aToHex(other.publicKey, undefined, false), (m) => sr25519Sign(m, other));
});

describe("authenticators", () => {
  it("an sr25519 node key verifies its own proofs only, and never throws on garbage", () => {
    const proof = sealEnvelope(nodeKey, "t/1", ["a", 1]);
    expect(nodeKey.verify('t/1\n["a",1]', proof)).toBe(true);
    expect(nodeKey.verify('t/1\n["a",2]', proof)).toBe(false);
    expect(otherKey.verify('t/1\n["a",1]', proof)).toBe(false);
    expect(nodeKey.verify("x", "not hex")).toBe(false);
    expect(nodeKeyAuthenticator("zz", undefined).verify("x", proof)).toBe(false);
    expect(() => nodeKeyAuthenticator("aa".repeat(32)).sign("x")).toThrow(/only verifies/);
  });

  it("an HMAC key verifies proofs of the same secret, 64 lower-case hex only", () => {
    const key = hmacAuthenticator("secret-0123456789");
    const proof = key.sign("m");
    expect(proof).toMatch(/^[0-9a-f]{64}$/);
    expect(key.verify("m", proof)).toBe(true);
    expect(hmacAuthenticator("another-secret-0123").verify("m", proof)).toBe(false);
    expect(key.verify("m", proof.toUpperCase())).toBe(false);
    expect(key.verify("m", proof.slice(2))).toBe(false);
  });
});

describe("EnvelopeChecker", () => {
  const envelope = (key: Authenticator, nonce: string | null, when: Date, fields: unknown[] = ["x"]) => ({
    tag: "t/1",
    fields,
    at: when.getTime(),
    replayKey: nonce,
    proof: sealEnvelope(key, "t/1", fields),
  });

  it("checks skew, then the replay key's form, then replay, then the proof; records only what holds", () => {
    const c = new EnvelopeChecker(30_000, new WindowedNonces(60_000));
    expect(c.check(envelope(nodeKey, "n1", at(-31)), nodeKey, t0)).toBe("skew");
    expect(c.check(envelope(nodeKey, "n1", at(31)), nodeKey, t0)).toBe("skew");
    expect(c.check({ ...envelope(nodeKey, "n1", t0), at: Number.NaN }, nodeKey, t0)).toBe("skew");
    expect(c.check(envelope(nodeKey, null, t0), nodeKey, t0)).toBe("malformed");
    expect(c.check(envelope(otherKey, "n1", t0), nodeKey, t0)).toBe("proof");
    // The refusal burnt nothing: the genuine one passes, once.
    expect(c.check(envelope(nodeKey, "n1", t0), nodeKey, t0)).toBeNull();
    expect(c.check(envelope(nodeKey, "n1", t0), nodeKey, t0)).toBe("replayed");
    // A replay is refused before its proof is even looked at.
    expect(c.check(envelope(otherKey, "n1", t0), nodeKey, t0)).toBe("replayed");
  });

  it("works the same with an HMAC key", () => {
    const key = hmacAuthenticator("secret-0123456789");
    const c = new EnvelopeChecker(30_000, new WindowedNonces(60_000));
    expect(c.check(envelope(key, "n", t0), key, t0)).toBeNull();
    expect(c.check(envelope(hmacAuthenticator("x"), "m", t0), key, t0)).toBe("proof");
  });
});

describe("replay stores", () => {
  it("windowed nonces are kept for their window, all or none", () => {
    const w = new WindowedNonces(60_000);
    expect(w.consume(["a", "b"], t0)).toBe(true);
    expect(w.consume(["c", "a"], at(1))).toBe(false);
    expect(w.seen("c", at(1))).toBe(false);
    expect(w.seen("a", at(60))).toBe(true);
    expect(w.seen("a", at(61))).toBe(false);
    expect(w.size).toBe(0);
  });

  it("increasing counters refuse anything not newer, per signer, until forgotten", () => {
    const c = new IncreasingCounters();
    expect(c.consume([{ signer: "m", counter: 5 }])).toBe(true);
    expect(c.seen({ signer: "m", counter: 5 })).toBe(true);
    expect(c.seen({ signer: "m", counter: 4 })).toBe(true);
    expect(c.seen({ signer: "n", counter: 4 })).toBe(false);
    expect(c.consume([{ signer: "m", counter: 6 }])).toBe(true);
    c.forget("m");
    expect(c.seen({ signer: "m", counter: 1 })).toBe(false);
  });
});
