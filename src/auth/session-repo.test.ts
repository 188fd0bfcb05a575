import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb } from "../store/db.js";
import { SessionRepo } from "./session-repo.js";
import { cryptoWaitReady, testWallet, type TestWallet } from "./testing.js";

let alice: TestWallet;
beforeAll(async () => {
  await cryptoWaitReady();
  alice = testWallet("//alice");
});
const now = new Date("2026-01-01T00:00:00Z");

describe("SessionRepo: session ids from memory", () => {
  it("answers the same frozen renter for a session id while renter_sessions is unchanged", () => {
    const sessions = new SessionRepo(openDb(":memory:"));
    const id = sessions.ensure({ kind: "wallet", renterId: alice.address, wallet: alice.address }, now);
    const renter = sessions.check(id, alice.sign(id))!;
    expect(renter).toEqual({ kind: "wallet", renterId: alice.address, wallet: alice.address, via: "session" });
    expect(sessions.check(id, alice.sign(id))).toBe(renter);
    expect(Object.isFrozen(renter)).toBe(true);
    // The kept row does not stand for the signature: a wrong one is still refused.
    expect(sessions.check(id, testWallet("//mallory").sign(id))).toBeUndefined();
  });

  it("finds a session id it did not know as soon as it is created, here or by another connection", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-sess-")), "batu.db");
    const sessions = new SessionRepo(openDb(path));
    const id = "S".repeat(44);
    expect(sessions.check(id, alice.sign(id))).toBeUndefined();
    const other = openDb(path);
    other
      .prepare("INSERT INTO renter_sessions (renter_id, session_id, kind, wallets_json, threshold, created_at) VALUES (?, ?, 'wallet', ?, NULL, ?)")
      .run(alice.address, id, JSON.stringify([alice.address]), now.toISOString());
    other.close();
    expect(sessions.check(id, alice.sign(id))?.renterId).toBe(alice.address);
    const bob = testWallet("//bob");
    const mine = sessions.ensure({ kind: "wallet", renterId: bob.address, wallet: bob.address }, now);
    expect(sessions.check(mine, bob.sign(mine))?.renterId).toBe(bob.address);
  });
});
