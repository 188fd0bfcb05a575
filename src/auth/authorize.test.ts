import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeAddress } from "@polkadot/util-crypto";
import { parseDbcRequest, type DbcRequest } from "../api/v1/request.js";
import { openDb } from "../store/db.js";
import { NonceRepo } from "./nonce-repo.js";
import { NONCES_PER_SIGNER, RenterAuthority, signedNonces } from "./authorize.js";
import { publicKeyHex, signatureWork, walletPublicKey } from "./signature.js";
import { multisigAccount } from "./renter.js";
import { cryptoWaitReady, dbcRefusal, multisigIdentity, testNonce, testWallet, walletIdentity, type TestWallet } from "./testing.js";

let alice: TestWallet, bob: TestWallet, carol: TestWallet, mallory: TestWallet;
beforeAll(async () => {
  await cryptoWaitReady();
  alice = testWallet("//alice");
  bob = testWallet("//bob");
  carol = testWallet("//carol");
  mallory = testWallet("//mallory");
});

const NODE = "c".repeat(64);
const t0 = new Date("2026-01-01T00:00:00Z");
const at = (h: number) => new Date(t0.getTime() + h * 3600_000);
const body = (identity: object): DbcRequest => parseDbcRequest({ peer_nodes_list: [NODE], additional: {}, ...identity });

const refusal = dbcRefusal;

function setup(path = ":memory:") {
  const db = openDb(path);
  const auth = RenterAuthority.open(db);
  return { db, auth, nonces: new NonceRepo(db) };
}

describe("RenterAuthority.authorize: a node rented by GPU", () => {
  it("lets each of its renters in, as itself, and no one else", () => {
    const { auth } = setup();
    const gpus = (n: number) => ({ gpus: n, cpuCores: null, memGib: null, diskGib: null, diskIops: null, diskMBps: null, netMbit: null });
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0, gpus(2), 8);
    auth.rentals.grant(NODE, { wallet: bob.address }, at(10), t0, gpus(6), 8);
    expect(auth.authorize(body(walletIdentity(alice)), NODE, at(1)).renterId).toBe(alice.address);
    expect(auth.authorize(body(walletIdentity(bob)), NODE, at(1)).renterId).toBe(bob.address);
    expect(refusal(() => auth.authorize(body(walletIdentity(carol)), NODE, at(1)))).toEqual([200, -3, "check authority failed: wallet not rented"]);
    expect(auth.rentals.rentalOf(NODE, bob.address, at(1))?.limits.gpus).toBe(6);
    expect(auth.rentals.nodeState(NODE, at(1))).toBe("rented");
  });
});

describe("RenterAuthority.authorize: wallet", () => {
  it("accepts the renter's signed nonce once, ever", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const id = walletIdentity(alice);
    expect(auth.authorize(body(id), NODE, at(1))).toEqual({ kind: "wallet", renterId: alice.address, wallet: alice.address, via: "signature" });
    expect(refusal(() => auth.authorize(body(id), NODE, at(1)))).toEqual([200, -3, "check authority failed: nonce check failed: nonce is already exist"]);
  });

  it("refuses a replay after the SQLite file is reopened", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-auth-")), "batu.db");
    const first = setup(path);
    first.auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const id = walletIdentity(alice);
    first.auth.authorize(body(id), NODE, at(1));
    first.db.close();
    const second = setup(path);
    expect(refusal(() => second.auth.authorize(body(id), NODE, at(2)))[2]).toBe("check authority failed: nonce check failed: nonce is already exist");
    // The same wallet under another SS58 prefix is the same signer.
    const other = { ...id, wallet: encodeAddress(alice.pair.publicKey, 0) };
    expect(refusal(() => second.auth.authorize(body(other), NODE, at(2)))[2]).toMatch(/nonce is already exist$/);
  });

  it("keys nonces by signer: two wallets may use one nonce", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const nonce = testNonce();
    expect(refusal(() => auth.authorize(body(walletIdentity(bob, nonce)), NODE, at(1)))[2]).toBe("check authority failed: wallet not rented");
    expect(auth.authorize(body(walletIdentity(alice, nonce)), NODE, at(1)).renterId).toBe(alice.address);
  });

  it("refuses a wrong signature, another wallet's signature, and a wallet that is not the renter", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const nonce = testNonce();
    const wrongMessage = { wallet: alice.address, nonce, sign: alice.sign(nonce + "x") };
    const bobsSign = { wallet: alice.address, nonce, sign: bob.sign(nonce) };
    expect(refusal(() => auth.authorize(body(wrongMessage), NODE, at(1)))).toEqual([200, -3, "check authority failed: nonce check failed: verify sign failed"]);
    expect(refusal(() => auth.authorize(body(bobsSign), NODE, at(1)))[2]).toBe("check authority failed: nonce check failed: verify sign failed");
    expect(refusal(() => auth.authorize(body({ ...bobsSign, wallet: "5xyz" }), NODE, at(1)))[2]).toBe("check authority failed: nonce check failed: wallet is invalid");
    expect(refusal(() => auth.authorize(body(walletIdentity(bob)), NODE, at(1)))).toEqual([200, -3, "check authority failed: wallet not rented"]);
    // A refused signature burns nothing: alice can still use the nonce.
    expect(auth.authorize(body(walletIdentity(alice, nonce)), NODE, at(1)).renterId).toBe(alice.address);
  });

  it("says the machine is not rented, before looking at signatures, when no grant is active", () => {
    const { auth } = setup();
    const notRented = "check authority failed: machine is not be rented";
    expect(refusal(() => auth.authorize(body(walletIdentity(alice)), NODE, t0))).toEqual([200, -3, notRented]);
    auth.rentals.grant(NODE, { wallet: alice.address }, at(2), t0);
    expect(refusal(() => auth.authorize(body(walletIdentity(alice)), NODE, at(3)))[2]).toBe(notRented); // expired
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), at(3));
    auth.rentals.revoke({ nodeId: NODE, renter: { wallet: alice.address } }, at(4));
    expect(refusal(() => auth.authorize(body(walletIdentity(alice)), NODE, at(5)))[2]).toBe(notRented); // revoked
  });

  it("refuses a body without a usable identity with DBC's -25 / HTTP 400", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const prefix = "wallet_sign and multisig_wallets all invalid";
    expect(refusal(() => auth.authorize(body({}), NODE, t0))).toEqual([400, -25, `${prefix}: send wallet, nonce and sign; or multisig_accounts; or session_id and session_id_sign`]);
    expect(refusal(() => auth.authorize(body({ wallet: alice.address, nonce: "n" }), NODE, t0))).toEqual([400, -25, `${prefix}: sign is empty`]);
    expect(refusal(() => auth.authorize(body({ session_id: "abc" }), NODE, t0))[2]).toBe(`${prefix}: session_id_sign is empty`);
  });
});

describe("RenterAuthority.authorize: multisig", () => {
  const set = () => [alice, bob, carol];
  const grant = (auth: RenterAuthority, threshold = 2) =>
    auth.rentals.grant(NODE, { multisig: { wallets: set().map((w) => w.address), threshold } }, at(10), t0);

  it("accepts threshold distinct signers of the set; the renter is the multisig account", () => {
    const { auth } = setup();
    grant(auth);
    const r = auth.authorize(body(multisigIdentity(set(), 2, [carol, alice])), NODE, at(1));
    expect(r).toMatchObject({ kind: "multisig", renterId: multisigAccount(set().map((w) => w.address), 2), threshold: 2, via: "signature" });
    // The set in another order, threshold as a number: the same account.
    expect(auth.authorize(body(multisigIdentity([carol, bob, alice], 2, [bob, carol])), NODE, at(1)).renterId).toBe(r.renterId);
  });

  it("refuses below threshold, a duplicated signer, a signer outside the set, a bad signature, a replay", () => {
    const { auth } = setup();
    grant(auth);
    const below = body(multisigIdentity(set(), 2, [alice]));
    expect(refusal(() => auth.authorize(below, NODE, at(1)))).toEqual([400, -25, "wallet_sign and multisig_wallets all invalid: threshold is invalid"]);
    const twice = body(multisigIdentity(set(), 2, [alice, alice]));
    expect(refusal(() => auth.authorize(twice, NODE, at(1)))).toEqual([200, -3, `check authority failed: nonce check failed: multisig sign_wallet ${alice.address} signed twice`]);
    const outside = body(multisigIdentity(set(), 2, [alice, mallory]));
    expect(refusal(() => auth.authorize(outside, NODE, at(1)))).toEqual([400, -25, `wallet_sign and multisig_wallets all invalid: multisig sign_wallet ${mallory.address} not found in wallets`]);
    const forged = multisigIdentity(set(), 2, [alice, bob]);
    forged.multisig_accounts.signs[1]!.sign = mallory.sign(forged.multisig_accounts.signs[1]!.nonce);
    expect(refusal(() => auth.authorize(body(forged), NODE, at(1)))[2]).toBe("check authority failed: nonce check failed: verify multisig sign failed");
    const good = body(multisigIdentity(set(), 2, [alice, bob]));
    auth.authorize(good, NODE, at(1));
    expect(refusal(() => auth.authorize(good, NODE, at(1)))[2]).toBe("check authority failed: nonce check failed: multisig nonce is already exist");
  });

  it("another threshold is another account: not the renter", () => {
    const { auth } = setup();
    grant(auth, 2);
    expect(refusal(() => auth.authorize(body(multisigIdentity(set(), 3, [alice, bob, carol])), NODE, at(1)))[2]).toBe("check authority failed: wallet not rented");
  });
});

describe("RenterAuthority: what a stranger's request costs (counted, not timed)", () => {
  const work = () => ({ ...signatureWork });
  const spent = (before: { decodes: number; verifies: number }) => ({
    decodes: signatureWork.decodes - before.decodes,
    verifies: signatureWork.verifies - before.verifies,
  });

  it("a 100-wallet multisig whose 100 signs all name the last wallet: each wallet decoded once, no signature checked", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const wallets = Array.from({ length: 100 }, (_, i) => testWallet(`//stranger-${i}`));
    const last = wallets[99]!;
    const nonce = testNonce();
    const flood = {
      wallets: wallets.map((w) => w.address),
      threshold: "1",
      signs: Array.from({ length: 100 }, () => ({ wallet: last.address, nonce, sign: last.sign(nonce) })),
    };
    const before = work();
    expect(refusal(() => auth.authorize(body({ multisig_accounts: flood }), NODE, at(1)))[2]).toBe("check authority failed: wallet not rented");
    expect(spent(before)).toEqual({ decodes: 100, verifies: 0 });
  });

  it("a stranger's valid wallet signature: refused unchecked, and its nonce is not stored", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const id = walletIdentity(bob);
    const before = work();
    expect(refusal(() => auth.authorize(body(id), NODE, at(1)))[2]).toBe("check authority failed: wallet not rented");
    expect(spent(before).verifies).toBe(0);
    // Once bob rents the node, the same nonce is his to use: nothing of his was burnt before.
    auth.rentals.revoke({ nodeId: NODE, renter: { wallet: alice.address } }, at(2));
    auth.rentals.grant(NODE, { wallet: bob.address }, at(10), at(2));
    expect(auth.authorize(body(id), NODE, at(3)).renterId).toBe(bob.address);
  });

  it("the renter's own flood of one signer: stops at the second sign, after one check", () => {
    const { auth } = setup();
    const set = [alice, bob, carol];
    auth.rentals.grant(NODE, { multisig: { wallets: set.map((w) => w.address), threshold: 1 } }, at(10), t0);
    const nonce = testNonce();
    const ms = { wallets: set.map((w) => w.address), threshold: "1", signs: Array.from({ length: 3 }, () => ({ wallet: alice.address, nonce, sign: alice.sign(nonce) })) };
    const before = work();
    expect(refusal(() => auth.authorize(body({ multisig_accounts: ms }), NODE, at(1)))[2]).toMatch(/signed twice$/);
    expect(spent(before).verifies).toBe(1);
  });
});

describe("RenterAuthority sessions", () => {
  it("gives the renter one session id, stable across calls and restarts; session fields are ignored there", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-sess-")), "batu.db");
    const first = setup(path);
    first.auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const { session_id } = first.auth.sessionId(body(walletIdentity(alice)), NODE, at(1));
    expect(session_id).toMatch(/^[1-9A-HJ-NP-Za-km-z]{40,50}$/);
    expect(first.auth.sessionId(body(walletIdentity(alice)), NODE, at(1)).session_id).toBe(session_id);
    first.db.close();
    const second = setup(path);
    expect(second.auth.sessionId(body(walletIdentity(alice)), NODE, at(2)).session_id).toBe(session_id);
    const viaSession = { session_id, session_id_sign: alice.sign(session_id) };
    expect(refusal(() => second.auth.sessionId(body(viaSession), NODE, at(2)))[1]).toBe(-25);
    expect(refusal(() => second.auth.sessionId(body(walletIdentity(bob)), NODE, at(2)))[2]).toBe("check authority failed: wallet not rented");
  });

  it("lets a third party act as the renter with the session id and the renter's signature of it, reusably", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const { session_id } = auth.sessionId(body(walletIdentity(alice)), NODE, at(1));
    const viaSession = body({ session_id, session_id_sign: alice.sign(session_id).slice(2) });
    const expected = { kind: "wallet", renterId: alice.address, wallet: alice.address, via: "session" };
    expect(auth.authorize(viaSession, NODE, at(2))).toEqual(expected);
    expect(auth.authorize(viaSession, NODE, at(3))).toEqual(expected);
    expect(refusal(() => auth.authorize(body({ session_id, session_id_sign: bob.sign(session_id) }), NODE, at(2)))).toEqual([200, -3, "check authority failed: session_id is invalid"]);
    expect(refusal(() => auth.authorize(body({ session_id: "nope", session_id_sign: alice.sign("nope") }), NODE, at(2)))[2]).toBe("check authority failed: session_id is invalid");
    // A bad session falls back to a good wallet signature, as in DBC.
    expect(auth.authorize(body({ session_id, session_id_sign: bob.sign(session_id), ...walletIdentity(alice) }), NODE, at(2)).via).toBe("signature");
  });

  it("accepts the session id signed by any signer of the multisig set", () => {
    const { auth } = setup();
    const set = [alice, bob, carol];
    auth.rentals.grant(NODE, { multisig: { wallets: set.map((w) => w.address), threshold: 2 } }, at(10), t0);
    const { session_id } = auth.sessionId(body(multisigIdentity(set, 2, [alice, bob])), NODE, at(1));
    for (const signer of set) {
      expect(auth.authorize(body({ session_id, session_id_sign: signer.sign(session_id) }), NODE, at(2))).toMatchObject({ kind: "multisig", via: "session" });
    }
    expect(refusal(() => auth.authorize(body({ session_id, session_id_sign: mallory.sign(session_id) }), NODE, at(2)))[2]).toBe("check authority failed: session_id is invalid");
  });

  it("a session of a renter whose rental ended: not rented, or expired when another renter has the node", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(2), t0);
    const { session_id } = auth.sessionId(body(walletIdentity(alice)), NODE, at(1));
    const viaSession = body({ session_id, session_id_sign: alice.sign(session_id) });
    expect(refusal(() => auth.authorize(viaSession, NODE, at(3)))[2]).toBe("check authority failed: machine is not be rented");
    auth.rentals.grant(NODE, { wallet: bob.address }, at(10), at(3));
    expect(refusal(() => auth.authorize(viaSession, NODE, at(4)))).toEqual([200, -3, "check authority failed: machine has already expired"]);
    expect(auth.authenticate(viaSession, at(4))).toMatchObject({ renterId: alice.address, via: "session" });
  });

  it("a session signature that verified before (remembered) does not outlive a revoked or expired rental", () => {
    const { auth } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(5), t0);
    const { session_id } = auth.sessionId(body(walletIdentity(alice)), NODE, at(1));
    const viaSession = body({ session_id, session_id_sign: alice.sign(session_id) });
    expect(auth.authorize(viaSession, NODE, at(2)).via).toBe("session");
    expect(auth.authorize(viaSession, NODE, at(2)).via).toBe("session"); // from memory
    expect(refusal(() => auth.authorize(viaSession, NODE, at(6)))[2]).toBe("check authority failed: machine is not be rented");
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), at(6));
    expect(auth.authorize(viaSession, NODE, at(7)).via).toBe("session");
    auth.rentals.revoke({ nodeId: NODE, renter: { wallet: alice.address } }, at(7));
    expect(refusal(() => auth.authorize(viaSession, NODE, at(8)))[2]).toBe("check authority failed: machine is not be rented");
  });
});

describe("RenterAuthority: how long used nonces are kept", () => {
  const DAY = 24;
  const retention = 10 * DAY * 3600_000;
  const keyOf = (w: TestWallet) => publicKeyHex(walletPublicKey(w.address)!);

  it("while the renter rents a node and for the retention after; multisig wallets too; then forgotten", () => {
    const { auth, nonces } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    auth.rentals.grant("d".repeat(64), { multisig: { wallets: [bob.address, carol.address], threshold: 1 } }, at(20), t0);
    const used = walletIdentity(alice);
    auth.authorize(body(used), NODE, at(1));
    auth.authorize(body(multisigIdentity([bob, carol], 1, [bob])), "d".repeat(64), at(1));
    // A stale signer (a renter long gone) is forgotten at once.
    nonces.consume([{ signer: walletPublicKey(mallory.address)!, nonce: "old" }], t0);
    expect(auth.forgetStaleNonces(retention, at(2))).toBe(1);
    // alice's rental ended at hour 10: within the retention her nonce is still refused...
    expect(auth.forgetStaleNonces(retention, at(10 + 10 * DAY - 1))).toBe(0);
    expect(refusal(() => auth.authorize(body(used), NODE, at(5)))[2]).toMatch(/nonce is already exist$/);
    // ... and forgotten after it, while bob's (ended at hour 20) is kept a little longer.
    expect(auth.forgetStaleNonces(retention, at(10 + 10 * DAY + 1))).toBe(1);
    expect([nonces.countOf(keyOf(alice)), nonces.countOf(keyOf(bob))]).toEqual([0, 1]);
    expect(auth.forgetStaleNonces(retention, at(20 + 10 * DAY + 1))).toBe(1);
    expect(nonces.countOf(keyOf(bob))).toBe(0);
  });

  it("keeps a signer's newest NONCES_PER_SIGNER only", () => {
    const { auth, nonces } = setup();
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    const key = walletPublicKey(alice.address)!;
    const extra = 5;
    for (let i = 0; i < NONCES_PER_SIGNER + extra; i++) nonces.consume([{ signer: key, nonce: `n${i}` }], new Date(t0.getTime() + i));
    expect(auth.forgetStaleNonces(retention, at(1))).toBe(extra);
    expect(nonces.countOf(keyOf(alice))).toBe(NONCES_PER_SIGNER);
    // The oldest went; the newest is still refused.
    expect(nonces.consume([{ signer: key, nonce: "n0" }], at(1))).toBe(true);
    expect(nonces.consume([{ signer: key, nonce: `n${NONCES_PER_SIGNER + extra - 1}` }], at(1))).toBe(false);
  });
});

describe("RenterAuthority.burnForwardedNonces: a member's own check of its master's forwarded calls", () => {
  it("burns a wallet's nonce once: the same nonce forwarded again is refused as DBC refuses a replay", () => {
    const { auth } = setup();
    const identity = body(walletIdentity(alice));
    const uses = signedNonces(identity);
    expect(uses).toEqual([{ signer: publicKeyHex(walletPublicKey(alice.address)!), nonce: identity.nonce }]);
    auth.burnForwardedNonces(uses, at(1));
    expect(refusal(() => auth.burnForwardedNonces(uses, at(1)))).toEqual([200, -3, "check authority failed: nonce check failed: nonce is already exist"]);
    // And a direct call with that nonce, at this node, too.
    auth.rentals.grant(NODE, { wallet: alice.address }, at(10), t0);
    expect(refusal(() => auth.authorize(identity, NODE, at(1)))[2]).toContain("nonce is already exist");
  });

  it("names every signer's nonce of a multisig call, and none of a session identity", () => {
    const { auth, db } = setup();
    const uses = signedNonces(body(multisigIdentity([alice, bob, carol], 2, [alice, bob])));
    expect(uses.map((u) => u.signer)).toEqual([alice, bob].map((w) => publicKeyHex(walletPublicKey(w.address)!)));
    auth.burnForwardedNonces(uses, at(1));
    expect(refusal(() => auth.burnForwardedNonces(uses, at(1)))[2]).toContain("nonce is already exist");
    expect((db.prepare("SELECT COUNT(*) AS n FROM used_nonces").get() as { n: number }).n).toBe(2);
    expect(signedNonces(body({ session_id: "s".repeat(32), session_id_sign: "0x00" }))).toEqual([]);
  });
});
