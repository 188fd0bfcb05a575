import { beforeAll, describe, expect, it } from "vitest";
import { parseDbcRequest, type DbcRequest } from "../api/v1/request.js";
import { openDb } from "../store/db.js";
import { NonceRepo } from "../auth/nonce-repo.js";
import { SessionRepo } from "../auth/session-repo.js";
import { RenterAuthority } from "../auth/authorize.js";
import { multisigAccount } from "../auth/renter.js";
import { WHOLE_NODE, type RentalLimits } from "../auth/rental-ledger.js";
import { publicKeyHex, walletPublicKey } from "../auth/signature.js";
import { cryptoWaitReady, dbcRefusal, multisigIdentity, testWallet, walletIdentity, type TestWallet } from "../auth/testing.js";
import type { MemberTerms } from "../group/rental-terms.js";
import { MemberRentals } from "./member-rentals.js";

let alice: TestWallet, bob: TestWallet, carol: TestWallet;
beforeAll(async () => {
  await cryptoWaitReady();
  alice = testWallet("//alice");
  bob = testWallet("//bob");
  carol = testWallet("//carol");
});

const NODE = "c".repeat(64);
const OTHER = "d".repeat(64);
const t0 = new Date("2026-01-01T00:00:00Z");
const at = (h: number) => new Date(t0.getTime() + h * 3600_000);
const body = (identity: object, node = NODE): DbcRequest => parseDbcRequest({ peer_nodes_list: [node], additional: {}, ...identity });
const TWO_GPUS: RentalLimits = { ...WHOLE_NODE, gpus: 2, cpuCores: 4 };

const refusal = dbcRefusal;

/** A member's authority over the terms `terms()` holds (changed by the test), with its own nonces. */
function member(initial: MemberTerms | undefined) {
  let terms = initial;
  const db = openDb(":memory:");
  const rentals = new MemberRentals(NODE, () => terms);
  const auth = new RenterAuthority({ rentals, nonces: new NonceRepo(db), sessions: new SessionRepo(db) });
  return { auth, rentals, nonces: new NonceRepo(db), set: (t: MemberTerms | undefined) => (terms = t) };
}

/** alice rents the node until hour 10, bob's use ended at hour 2. */
const terms = (): MemberTerms => ({
  renters: new Map([
    [alice.address, at(10).toISOString()],
    [bob.address, at(2).toISOString()],
  ]),
  grants: new Map([
    [alice.address, { limits: TWO_GPUS }],
    [bob.address, { limits: WHOLE_NODE }],
  ]),
});

describe("a member's renter authority, from its master's terms", () => {
  it("lets the renter of this node in while its rental lasts, by wallet signature", () => {
    const { auth, rentals } = member(terms());
    expect(auth.authorize(body(walletIdentity(alice)), NODE, at(1))).toMatchObject({ renterId: alice.address, via: "signature" });
    expect(rentals.limitsOf(alice.address, NODE, at(1))).toEqual(TWO_GPUS);
    expect(rentals.nodeState(NODE, at(1))).toBe("rented");
  });

  it("refuses a renter whose rental ended, and everyone once every rental ended", () => {
    const { auth, rentals } = member(terms());
    expect(refusal(() => auth.authorize(body(walletIdentity(bob)), NODE, at(3)))).toEqual([200, -3, "check authority failed: wallet not rented"]);
    expect(refusal(() => auth.authorize(body(walletIdentity(alice)), NODE, at(10)))).toEqual([200, -3, "check authority failed: machine is not be rented"]);
    expect(rentals.limitsOf(alice.address, NODE, at(11))).toBeUndefined();
    expect(rentals.nodeState(NODE, at(11))).toBe("online");
  });

  it("refuses a wallet the terms do not name (a stranger), without burning its nonce", () => {
    const { auth, nonces } = member(terms());
    expect(refusal(() => auth.authorize(body(walletIdentity(carol)), NODE, at(1)))).toEqual([200, -3, "check authority failed: wallet not rented"]);
    expect(nonces.countOf(publicKeyHex(walletPublicKey(carol.address)!))).toBe(0);
  });

  it("authorizes nothing for another node: the terms are this member's own", () => {
    const { auth, rentals } = member(terms());
    expect(refusal(() => auth.authorize(body(walletIdentity(alice), OTHER), OTHER, at(1)))).toEqual([200, -3, "check authority failed: machine is not be rented"]);
    expect(rentals.limitsOf(alice.address, OTHER, at(1))).toBeUndefined();
  });

  it("authorizes nothing before any terms came", () => {
    const { auth } = member(undefined);
    expect(refusal(() => auth.authorize(body(walletIdentity(alice)), NODE, at(1)))).toEqual([200, -3, "check authority failed: machine is not be rented"]);
  });

  it("burns nonces in the member's own table: a nonce used once is refused after", () => {
    const { auth } = member(terms());
    const signed = walletIdentity(alice);
    auth.authorize(body(signed), NODE, at(1));
    expect(refusal(() => auth.authorize(body(signed), NODE, at(1)))).toEqual([
      200,
      -3,
      "check authority failed: nonce check failed: nonce is already exist",
    ]);
  });

  it("knows no session id its master handed out: a session alone is refused, a signature beside it serves", () => {
    const { auth } = member(terms());
    const session = { session_id: "abc", session_id_sign: alice.sign("abc") };
    expect(refusal(() => auth.authorize(body(session), NODE, at(1)))).toEqual([200, -3, "check authority failed: session_id is invalid"]);
    expect(auth.authorize(body({ ...session, ...walletIdentity(alice) }), NODE, at(1)).renterId).toBe(alice.address);
  });

  it("a multisig renter signs as its set; its wallets' nonces are kept while it rents", () => {
    const set = [alice, bob, carol];
    const account = multisigAccount(set.map((w) => w.address), 2);
    const { auth, rentals } = member({
      renters: new Map([[account, at(10).toISOString()]]),
      grants: new Map([[account, { limits: WHOLE_NODE, wallets: set.map((w) => w.address) }]]),
    });
    expect(auth.authorize(body(multisigIdentity(set, 2, [alice, carol])), NODE, at(1)).renterId).toBe(account);
    expect(rentals.walletsRentingSince(at(1))).toEqual(new Set(set.map((w) => w.address)));
    expect(rentals.walletsRentingSince(at(11))).toEqual(new Set());
  });

  it("terms without grants (a master of the earlier version): renters still act, limits and wallets are unknown", () => {
    const { auth, rentals } = member({ renters: terms().renters, grants: undefined });
    expect(auth.authorize(body(walletIdentity(alice)), NODE, at(1)).renterId).toBe(alice.address);
    expect(rentals.grantsKnown).toBe(false);
    expect(rentals.limitsOf(alice.address, NODE, at(1))).toBeUndefined();
    expect(rentals.walletsRentingSince(at(1))).toBeUndefined();
  });

  it("forgets used nonces only of signers no longer renting (past the retention)", () => {
    const { auth, rentals, nonces, set } = member(terms());
    auth.authorize(body(walletIdentity(alice)), NODE, at(1));
    const aliceKey = publicKeyHex(walletPublicKey(alice.address)!);
    expect(auth.forgetStaleNonces(3600_000, at(5))).toBe(0);
    expect(nonces.countOf(aliceKey)).toBe(1);
    // Terms without grants while someone rents: its wallets are unknown, so every signer is kept.
    set({ renters: terms().renters, grants: undefined });
    expect(rentals.walletsRentingSince(at(4))).toBeUndefined();
    expect(auth.forgetStaleNonces(3600_000, at(5))).toBe(0);
    set(terms());
    expect(auth.forgetStaleNonces(3600_000, at(20))).toBe(1);
    expect(nonces.countOf(aliceKey)).toBe(0);
  });
});
