import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { cryptoWaitReady, testWallet, type TestWallet } from "./testing.js";
import { verifySignature } from "./signature.js";
import { VerifiedSignatures } from "./verified-signatures.js";

// The real check, counted: a hit must not reach it.
vi.mock("./signature.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("./signature.js")>();
  return { ...real, verifySignature: vi.fn(real.verifySignature) };
});
const checks = vi.mocked(verifySignature);

let alice: TestWallet;
let bob: TestWallet;
beforeAll(async () => {
  await cryptoWaitReady();
  alice = testWallet("//Alice");
  bob = testWallet("//Bob");
});
beforeEach(() => checks.mockClear());

describe("VerifiedSignatures", () => {
  it("checks a signature once; the exact same one again is a hit without a check", () => {
    const cache = new VerifiedSignatures();
    const sign = alice.sign("session-1");
    expect(cache.has("session-1", alice.address, sign)).toBe(false);
    expect(cache.verify("session-1", alice.address, sign)).toBe(true);
    expect(cache.verify("session-1", alice.address, sign)).toBe(true);
    expect(cache.has("session-1", alice.address, sign)).toBe(true);
    expect(checks).toHaveBeenCalledTimes(1);
  });

  it("a different signature, signer or message is checked in full, and a bad one is refused", () => {
    const cache = new VerifiedSignatures();
    const sign = alice.sign("session-1");
    cache.verify("session-1", alice.address, sign);
    checks.mockClear();
    expect(cache.verify("session-1", alice.address, bob.sign("session-1"))).toBe(false);
    expect(cache.verify("session-1", bob.address, sign)).toBe(false);
    expect(cache.verify("session-2", alice.address, sign)).toBe(false);
    // Another valid signature of the same message (sr25519 signs with a random nonce) is new: checked.
    expect(cache.verify("session-1", alice.address, alice.sign("session-1"))).toBe(true);
    expect(checks).toHaveBeenCalledTimes(4);
  });

  it("remembers only signatures that verified", () => {
    const cache = new VerifiedSignatures();
    const forged = bob.sign("session-1");
    expect(cache.verify("session-1", alice.address, forged)).toBe(false);
    expect(cache.verify("session-1", alice.address, forged)).toBe(false);
    expect(cache.size).toBe(0);
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it("keys cannot run into each other across the fields", () => {
    const cache = new VerifiedSignatures();
    const sign = alice.sign("ab");
    cache.verify("ab", alice.address, sign);
    // The same characters split differently between message and signer.
    expect(cache.has("a", `b${alice.address}`, sign)).toBe(false);
    expect(cache.has("abc", alice.address.slice(1), sign)).toBe(false);
  });

  it("holds at most maxEntries, dropping the least recently used", () => {
    const cache = new VerifiedSignatures(2);
    const [m1, m2, m3] = ["s1", "s2", "s3"];
    const [g1, g2, g3] = [alice.sign(m1), alice.sign(m2), alice.sign(m3)];
    cache.verify(m1, alice.address, g1);
    cache.verify(m2, alice.address, g2);
    expect(cache.has(m1, alice.address, g1)).toBe(true); // s1 used: s2 is now the oldest
    cache.verify(m3, alice.address, g3);
    expect(cache.size).toBe(2);
    expect(cache.has(m2, alice.address, g2)).toBe(false);
    expect(cache.has(m1, alice.address, g1)).toBe(true);
    expect(cache.has(m3, alice.address, g3)).toBe(true);
    checks.mockClear();
    expect(cache.verify(m2, alice.address, g2)).toBe(true); // evicted: checked again
    expect(checks).toHaveBeenCalledTimes(1);
  });

  it("refuses a bound that is not a positive integer", () => {
    expect(() => new VerifiedSignatures(0)).toThrow(/positive integer/);
  });
});
