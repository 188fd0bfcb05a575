import { beforeAll, describe, expect, it } from "vitest";
import { nodeKeyAuthenticator } from "../auth/signed-envelope.js";
import { WHOLE_NODE, type RentalGrants, type RentalTerms } from "../auth/rental-ledger.js";
import { holdsTerms, openRentalTerms, rentalTermsDigest, sealRentalTerms } from "./rental-terms.js";
import { cryptoWaitReady, testNode } from "./testing.js";

beforeAll(async () => {
  await cryptoWaitReady();
});

const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const SET = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
const SET_WALLETS = [ALICE, "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"];
const terms: RentalTerms = new Map([
  [ALICE, "2030-01-01T00:00:00.000Z"],
  [SET, "2029-01-01T00:00:00.000Z"],
]);
const grants: RentalGrants = new Map([
  [ALICE, { limits: { ...WHOLE_NODE, gpus: 2, cpuCores: 8 } }],
  [SET, { limits: WHOLE_NODE, wallets: SET_WALLETS }],
]);

describe("rental terms with grants (the second signature)", () => {
  it("a member opens what the master sealed for its heartbeat: ends, limits and a multisig renter's wallets", () => {
    const master = testNode(1);
    const member = testNode(2).nodeId;
    const signed = sealRentalTerms(terms, member, 42, master.key, grants);
    expect(signed.renters[0]).toEqual({ renter: ALICE, ends_at: "2030-01-01T00:00:00.000Z", limits: { gpus: 2, cpu_cores: 8, mem_gib: null, disk_gib: null, disk_iops: null, disk_mbps: null, net_mbit: null } });
    expect(openRentalTerms(signed, member, 42, nodeKeyAuthenticator(master.nodeId))).toEqual({ renters: terms, grants });
    // Another heartbeat's, another member's: refused.
    expect(openRentalTerms(signed, member, 43, nodeKeyAuthenticator(master.nodeId))).toBeUndefined();
    expect(openRentalTerms(signed, testNode(3).nodeId, 42, nodeKeyAuthenticator(master.nodeId))).toBeUndefined();
  });

  it("refuses limits or wallets changed after the master signed", () => {
    const master = testNode(1);
    const member = testNode(2).nodeId;
    const signed = sealRentalTerms(terms, member, 42, master.key, grants);
    const moreGpus = { ...signed, renters: signed.renters.map((r) => (r.renter === ALICE ? { ...r, limits: { ...r.limits!, gpus: 8 } } : r)) };
    expect(openRentalTerms(moreGpus, member, 42, nodeKeyAuthenticator(master.nodeId))).toBeUndefined();
    const otherWallets = { ...signed, renters: signed.renters.map((r) => (r.renter === SET ? { ...r, wallets: [ALICE] } : r)) };
    expect(openRentalTerms(otherWallets, member, 42, nodeKeyAuthenticator(master.nodeId))).toBeUndefined();
    // Stripping the second signature leaves the first protocol's terms: the renters' ends, no grants.
    const { grants_signature: _dropped, ...firstOnly } = signed;
    expect(openRentalTerms(firstOnly, member, 42, nodeKeyAuthenticator(master.nodeId))).toEqual({ renters: terms, grants: undefined });
  });

  it("one version apart: a master of the earlier version sends ends only; a member of the earlier version checks the first signature", () => {
    const master = testNode(1);
    const member = testNode(2).nodeId;
    const earlier = sealRentalTerms(terms, member, 7, master.key);
    expect(earlier.grants_signature).toBeUndefined();
    expect(earlier.renters.every((r) => r.limits === undefined && r.wallets === undefined)).toBe(true);
    expect(openRentalTerms(earlier, member, 7, nodeKeyAuthenticator(master.nodeId))).toEqual({ renters: terms, grants: undefined });
    // The new master's answer still carries the first protocol's signature over the same ends: what a
    // member of the earlier version reads of it (the renters and their ends) passes its check.
    const current = sealRentalTerms(terms, member, 7, master.key, grants);
    const asEarlierMemberReads = { renters: current.renters.map(({ renter, ends_at }) => ({ renter, ends_at })), signature: current.signature };
    expect(openRentalTerms(asEarlierMemberReads, member, 7, nodeKeyAuthenticator(master.nodeId))).toEqual({ renters: terms, grants: undefined });
  });

  it("the master resends nothing to a member holding the terms under either digest, and resends a grant's change", () => {
    expect(holdsTerms(rentalTermsDigest(terms), terms, grants)).toBe(true);
    expect(holdsTerms(rentalTermsDigest(terms, grants), terms, grants)).toBe(true);
    expect(holdsTerms(undefined, terms, grants)).toBe(false);
    const changed: RentalGrants = new Map([...grants, [ALICE, { limits: { ...WHOLE_NODE, gpus: 4, cpuCores: 8 } }]]);
    expect(holdsTerms(rentalTermsDigest(terms, grants), terms, changed)).toBe(false);
    // The same grants in another Map (a member's, rebuilt from the wire) give the same digest.
    const rebuilt: RentalGrants = new Map([...grants].map(([k, v]) => [k, structuredClone(v)]));
    expect(rentalTermsDigest(new Map(terms), rebuilt)).toBe(rentalTermsDigest(terms, grants));
  });
});
