import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeAddress } from "@polkadot/util-crypto";
import { RentalError } from "./errors.js";
import { domainError } from "../server/errors.js";
import { openDb } from "../store/db.js";
import { MIGRATIONS } from "../store/migrations.js";
import { RentalLedger, rentalState } from "./rental-ledger.js";
import { multisigAccount } from "./renter.js";
import { cryptoWaitReady, testWallet } from "./testing.js";

beforeAll(async () => {
  await cryptoWaitReady();
});

const NODE = "a".repeat(64);
const NODE2 = "b".repeat(64);
const t0 = new Date("2026-01-01T00:00:00Z");
const hours = (n: number) => new Date(t0.getTime() + n * 3600_000);

/** A refusal as the host API answers it (server/errors.ts maps the ledger's domain errors). */
function refusal(fn: () => unknown): { status: number; message: string } {
  try {
    fn();
  } catch (e) {
    const reply = domainError(e);
    if (e instanceof RentalError && reply) return reply;
    throw e;
  }
  throw new Error("did not throw");
}

describe("migration 3", () => {
  it("applies on the schema of migration 2 and creates the renter tables", () => {
    const db = openDb(":memory:", MIGRATIONS.slice(0, 2));
    db.close();
    const full = openDb(":memory:");
    const tables = (full.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(["rentals", "used_nonces", "renter_sessions"]));
  });
});

describe("RentalLedger", () => {
  const alice = () => testWallet("//alice-renter");
  const bob = () => testWallet("//bob-renter");

  it("grants, lists with state, and a node is rented only while a grant is active", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    const r = ledger.grant(NODE, { wallet: alice().address }, hours(2), t0);
    expect(r).toMatchObject({ id: 1, nodeId: NODE, until: hours(2).toISOString(), revokedAt: null });
    expect(r.renter).toEqual({ kind: "wallet", renterId: alice().address, wallet: alice().address });
    expect(ledger.nodeState(NODE, hours(1))).toBe("rented");
    expect(ledger.nodeState(NODE, hours(2))).toBe("online");
    expect(ledger.nodeState(NODE2, hours(1))).toBe("online");
    expect(rentalState(r, hours(1))).toBe("active");
    expect(rentalState(r, hours(3))).toBe("expired");
    expect(ledger.list({ state: "expired" }, hours(3))).toHaveLength(1);
    expect(ledger.activeRentalsOf(alice().address, hours(1)).map((x) => x.id)).toEqual([1]);
  });

  it("canonicalises the wallet: hex key or another SS58 prefix is the same renter", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    const a = alice();
    const r1 = ledger.grant(NODE, { wallet: a.publicKeyHex }, hours(2), t0);
    const r2 = ledger.grant(NODE, { wallet: encodeAddress(a.pair.publicKey, 0) }, hours(5), t0);
    expect(r2.id).toBe(r1.id);
    expect(r2.until).toBe(hours(5).toISOString());
    expect(r2.renter.renterId).toBe(a.address);
  });

  it("refuses a second renter while the first's grant is active, allows it after", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    ledger.grant(NODE, { wallet: alice().address }, hours(2), t0);
    const e = refusal(() => ledger.grant(NODE, { wallet: bob().address }, hours(3), hours(1)));
    expect(e.status).toBe(409);
    expect(e.message).toMatch(/^node_id: node a+ is rented to 5\w+ until .* \(rental 1\); revoke it first$/);
    expect(ledger.grant(NODE, { wallet: bob().address }, hours(4), hours(2)).id).toBe(2);
  });

  it("revokes by id or by node and renter; revoked wins over time; twice is harmless", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    const r = ledger.grant(NODE, { wallet: alice().address }, hours(2), t0);
    const revoked = ledger.revoke({ id: r.id }, hours(1));
    expect(revoked.revokedAt).toBe(hours(1).toISOString());
    expect(rentalState(revoked, hours(1))).toBe("revoked");
    expect(ledger.activeRental(NODE, hours(1))).toBeUndefined();
    expect(ledger.revoke({ id: r.id }, hours(1.5)).revokedAt).toBe(hours(1).toISOString());
    ledger.grant(NODE, { wallet: bob().address }, hours(5), hours(1));
    expect(refusal(() => ledger.revoke({ nodeId: NODE, renter: { wallet: alice().address } }, hours(2))).status).toBe(404);
    expect(ledger.revoke({ nodeId: NODE, renter: { wallet: bob().address } }, hours(2)).renter.renterId).toBe(bob().address);
    expect(refusal(() => ledger.revoke({ id: 99 })).message).toBe("id: no such rental: 99");
  });

  it("grants to a multisig set: its account is the renter, whatever the order of the wallets", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    const set = [alice(), bob(), testWallet("//carol-renter")].map((w) => w.address);
    const r = ledger.grant(NODE, { multisig: { wallets: set, threshold: "2" } }, hours(2), t0);
    expect(r.renter).toEqual({ kind: "multisig", renterId: multisigAccount(set, 2), wallets: set, threshold: 2 });
    expect(multisigAccount([...set].reverse(), 2)).toBe(r.renter.renterId);
    expect(multisigAccount(set, 3)).not.toBe(r.renter.renterId);
  });

  it("names the field of a bad grant (400)", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    const a = alice().address;
    const cases: [() => unknown, string][] = [
      [() => ledger.grant("xyz", { wallet: a }, hours(1), t0), "node_id: must be 64 hex characters (the node's public key)"],
      [() => ledger.grant(NODE, { wallet: "5Nope" }, hours(1), t0), "wallet: is not an SS58 address or a 64-hex public key"],
      [() => ledger.grant(NODE, { wallet: a }, t0, t0), "until: must be in the future"],
      [() => ledger.grant(NODE, { wallet: a }, new Date("x"), t0), "until: is not a time"],
      [() => ledger.grant(NODE, { multisig: { wallets: [a], threshold: 1 } }, hours(1), t0), "multisig_accounts.wallets: needs at least 2 wallets"],
      [() => ledger.grant(NODE, { multisig: { wallets: [a, a], threshold: 1 } }, hours(1), t0), "multisig_accounts.wallets[1]: is listed twice"],
      [() => ledger.grant(NODE, { multisig: { wallets: [a, "x"], threshold: 1 } }, hours(1), t0), "multisig_accounts.wallets[1]: is not an SS58 address or a 64-hex public key"],
      [() => ledger.grant(NODE, { multisig: { wallets: [a, bob().address], threshold: 3 } }, hours(1), t0), "multisig_accounts.threshold: must be between 1 and 2 (the number of wallets)"],
    ];
    for (const [fn, message] of cases) {
      const e = refusal(fn);
      expect([e.status, e.message]).toEqual([400, message]);
    }
  });

  it("keeps grants across reopening the file", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-rent-")), "batu.db");
    const db = openDb(path);
    new RentalLedger(db).grant(NODE, { wallet: alice().address }, hours(2), t0);
    db.close();
    const again = new RentalLedger(openDb(path));
    expect(again.activeRental(NODE, hours(1))?.renter.renterId).toBe(alice().address);
  });
});

describe("RentalLedger: a node's rental from memory", () => {
  const alice = () => testWallet("//alice-renter");
  const bob = () => testWallet("//bob-renter");

  it("answers the same frozen rental while rentals are unchanged; time alone ends it", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    ledger.grant(NODE, { wallet: alice().address }, hours(2), t0);
    const r = ledger.activeRental(NODE, hours(1))!;
    expect(ledger.activeRental(NODE, hours(1.5))).toBe(r);
    expect(Object.isFrozen(r) && Object.isFrozen(r.renter)).toBe(true);
    expect(ledger.activeRental(NODE.toUpperCase(), hours(1.5))).toBe(r);
    expect(ledger.activeRental(NODE, hours(2))).toBeUndefined();
    expect(ledger.activeRental(NODE2, hours(1))).toBeUndefined();
  });

  it("sees at once a grant, a moved until and a revoke made through the ledger", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    expect(ledger.activeRental(NODE, hours(1))).toBeUndefined();
    ledger.grant(NODE, { wallet: alice().address }, hours(2), hours(1));
    expect(ledger.activeRental(NODE, hours(1))?.until).toBe(hours(2).toISOString());
    ledger.grant(NODE, { wallet: alice().address }, hours(4), hours(1));
    expect(ledger.activeRental(NODE, hours(3))?.until).toBe(hours(4).toISOString());
    ledger.revoke({ nodeId: NODE, renter: { wallet: alice().address } }, hours(3));
    expect(ledger.activeRental(NODE, hours(3))).toBeUndefined();
  });

  it("sees at once a revoke or a grant written by another connection (the CLI offline)", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-rent-")), "batu.db");
    const agent = new RentalLedger(openDb(path));
    const r = agent.grant(NODE, { wallet: alice().address }, hours(5), t0);
    expect(agent.activeRental(NODE, hours(1))?.id).toBe(r.id);
    const cliDb = openDb(path);
    new RentalLedger(cliDb).revoke({ id: r.id }, hours(1));
    expect(agent.activeRental(NODE, hours(1))).toBeUndefined();
    new RentalLedger(cliDb).grant(NODE, { wallet: bob().address }, hours(5), hours(1));
    expect(agent.activeRental(NODE, hours(2))?.renter.renterId).toBe(bob().address);
    cliDb.close();
  });

  it("answers a time before the one it read at from the store: a grant over by then is not lost", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    ledger.grant(NODE, { wallet: alice().address }, hours(2), t0);
    ledger.grant(NODE, { wallet: bob().address }, hours(5), hours(3));
    expect(ledger.activeRental(NODE, hours(6))).toBeUndefined(); // kept: nothing live at 6 h
    expect(ledger.activeRental(NODE, hours(4))?.renter.renterId).toBe(bob().address);
    expect(ledger.activeRental(NODE, hours(1.5))?.renter.renterId).toBe(bob().address); // the newest, as the SQL says
  });
});

describe("RentalLedger.termsOf", () => {
  it("says when each renter's use of a node ends or ended: its latest grant, a revocation ending one early", () => {
    const ledger = new RentalLedger(openDb(":memory:"));
    const [alice, bob] = [testWallet("//alice"), testWallet("//bob")];
    const changes: number[] = [];
    ledger.onChange(() => changes.push(changes.length));
    ledger.grant(NODE, { wallet: alice.address }, hours(5), t0);
    ledger.revoke({ nodeId: NODE, renter: { wallet: alice.address } }, hours(2));
    ledger.grant(NODE, { wallet: bob.address }, hours(10), hours(3));
    ledger.grant(NODE2, { wallet: alice.address }, hours(50), hours(3));
    expect(ledger.termsOf(NODE)).toEqual(
      new Map([
        [bob.address, hours(10).toISOString()],
        [alice.address, hours(2).toISOString()],
      ]),
    );
    // Rented again after the revocation: the later end wins.
    ledger.grant(NODE, { wallet: alice.address }, hours(20), hours(11));
    expect(ledger.termsOf(NODE).get(alice.address)).toBe(hours(20).toISOString());
    expect(ledger.termsOf("e".repeat(64))).toEqual(new Map());
    expect(changes).toHaveLength(5);
  });
});
