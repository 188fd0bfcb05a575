import { describe, expect, it } from "vitest";
import { openDb } from "../store/db.js";
import { RentalLedger, WHOLE_NODE } from "../auth/rental-ledger.js";
import type { MemberTerms } from "../group/rental-terms.js";
import { MemberRentals } from "../rental/member-rentals.js";
import { AgentRentals } from "./renters.js";

const NODE = "c".repeat(64);
const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const t0 = new Date("2026-01-01T00:00:00Z");
const at = (h: number) => new Date(t0.getTime() + h * 3600_000);

/** A member's node: bob granted in its own ledger (by its operator), alice by its master's terms. */
function node(terms: MemberTerms | undefined) {
  const ledger = new RentalLedger(openDb(":memory:"));
  ledger.grant(NODE, { wallet: BOB }, at(5), t0, { cpuCores: 2 });
  return new AgentRentals(ledger, new MemberRentals(NODE, () => terms));
}

const fromMaster = (grants: MemberTerms["grants"]): MemberTerms => ({ renters: new Map([[ALICE, at(10).toISOString()]]), grants });

describe("AgentRentals: a node's own grants and its master's terms", () => {
  it("lets the renters of either act, with what each one's grant gives", () => {
    const rentals = node(fromMaster(new Map([[ALICE, { limits: { ...WHOLE_NODE, gpus: 1 } }]])));
    expect(rentals.activeRenterIds(NODE, at(1))).toEqual(new Set([ALICE, BOB]));
    expect(rentals.limitsOf(ALICE, NODE, at(1))?.gpus).toBe(1);
    expect(rentals.limitsOf(BOB, NODE, at(1))?.cpuCores).toBe(2);
    expect(rentals.walletsRentingSince(at(1))).toEqual(new Set([ALICE, BOB]));
    expect(rentals.grantUnknown(ALICE, NODE, at(1))).toBe(false);
    // Each by its own end.
    expect(rentals.activeRenterIds(NODE, at(6))).toEqual(new Set([ALICE]));
    expect(rentals.nodeState(NODE, at(11))).toBe("online");
  });

  it("terms without grants: the master's renters act, but what their grant gives is unknown; the node's own grants are known", () => {
    const rentals = node(fromMaster(undefined));
    expect(rentals.activeRenterIds(NODE, at(1))).toEqual(new Set([ALICE, BOB]));
    expect(rentals.grantUnknown(ALICE, NODE, at(1))).toBe(true);
    expect(rentals.grantUnknown(BOB, NODE, at(1))).toBe(false);
    expect(rentals.walletsRentingSince(at(1))).toBeUndefined();
  });

  it("with no terms (a master, an agent in no group): its own ledger alone", () => {
    const rentals = node(undefined);
    expect(rentals.activeRenterIds(NODE, at(1))).toEqual(new Set([BOB]));
    expect(rentals.walletsRentingSince(at(1))).toEqual(new Set([BOB]));
    expect(rentals.grantUnknown(ALICE, NODE, at(1))).toBe(false);
  });
});
