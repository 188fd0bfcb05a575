/**
 * DBC's `check_authority` on batu's rental ledger (reference §2.3–2.5): the one place that decides
 * who a `/api/v1` request acts as. Every refusal is a RenterRefusal with DBC's text (its errcode is
 * given at the edge, server/routes/v1/errors.ts).
 */
import { encodeAddress } from "@polkadot/util-crypto";
import { AUTHORITY_FAILED } from "../api/v1/envelope.js";
import { RenterRefusal } from "./errors.js";
import type { DbcMultisigAccounts, DbcRequest } from "../api/v1/request.js";
import type { Db } from "../store/db.js";
import { NonceRepo, type NonceUse } from "./nonce-repo.js";
import { RentalLedger } from "./rental-ledger.js";
import { MAX_MULTISIG_WALLETS, multisigAccountOfKeys, parseThreshold, type Renter, type RenterIdentity } from "./renter.js";
import { SessionRepo } from "./session-repo.js";
import { publicKeyHex, SS58_PREFIX, verifySignature, walletPublicKey } from "./signature.js";

/**
 * Who rents a node: the rental ledger on a master (or an agent in no group), the terms its master
 * last sent on a member (rental/member-rentals.ts).
 */
export interface RentalSource {
  /** The renters with an active rental of `nodeId` at `now`. */
  activeRenterIds(nodeId: string, now: Date): ReadonlySet<string>;
  /** The wallets of every renter active at `since` or later (multisig: each of its set's); undefined: not known. */
  walletsRentingSince(since: Date): Set<string> | undefined;
}

export interface RenterAuthorityDeps<R extends RentalSource = RentalLedger> {
  rentals: R;
  nonces: NonceRepo;
  sessions: SessionRepo;
}

/**
 * `check authority failed: <reason>`, DBC's text, with batu's `: <detail>` after it where DBC only
 * logs the cause (`check authority failed: nonce check failed: nonce is already exist`).
 */
function denied(reason: string, detail?: string): RenterRefusal {
  return new RenterRefusal("denied", `${AUTHORITY_FAILED}: ${reason}${detail ? `: ${detail}` : ""}`);
}

/** `check authority failed: <reason>` because the rentals or sessions say no (RenterRefusal `not_renter`). */
function notRenter(reason: string): RenterRefusal {
  return new RenterRefusal("not_renter", `${AUTHORITY_FAILED}: ${reason}`);
}

/**
 * How many used nonces are kept per signer: past it the oldest are forgotten (and could be replayed),
 * as DBC's own filter forgets past a million. A client signing a fresh nonce per call every second
 * keeps a day's worth; a session id spares nonces altogether.
 */
export const NONCES_PER_SIGNER = 100_000;

/** DBC's client-node text when a request carries no usable identity (HTTP 400, -25). */
export const NO_IDENTITY = "wallet_sign and multisig_wallets all invalid";

/** A multisig identity with every wallet string decoded once (DBC's clients repeat them in `signs`). */
interface DecodedMultisig {
  threshold: number;
  /** The set's keys, in the order given. */
  keys: Uint8Array[];
  signs: Array<{ wallet: string; key: Uint8Array; nonce: string; sign: string }>;
}

/**
 * Decodes a multisig identity and checks its shape (DBC's `check_multisig_wallets`): a problem, or
 * the decoded set. Each distinct wallet string is decoded once, so the work grows with the set, not
 * with signs times wallets.
 */
function decodeMultisig(ms: DbcMultisigAccounts): DecodedMultisig | { problem: string } {
  let done = decodedMultisigs.get(ms);
  if (!done) decodedMultisigs.set(ms, (done = decodeMultisigOnce(ms)));
  return done;
}

// One decode per request: the pre-check, the claim and the signature check all read the same body object.
const decodedMultisigs = new WeakMap<DbcMultisigAccounts, DecodedMultisig | { problem: string }>();

function decodeMultisigOnce(ms: DbcMultisigAccounts): DecodedMultisig | { problem: string } {
  const threshold = parseThreshold(ms.threshold);
  if (ms.wallets.length === 0 || ms.signs.length === 0) return { problem: "multisig wallet is empty" };
  if (ms.wallets.length > MAX_MULTISIG_WALLETS || ms.signs.length > MAX_MULTISIG_WALLETS) {
    return { problem: `multisig names more than ${MAX_MULTISIG_WALLETS} wallets or signs` };
  }
  if (threshold < 1 || threshold > ms.wallets.length || threshold > ms.signs.length) return { problem: "threshold is invalid" };
  const decoded = new Map<string, Uint8Array | undefined>();
  const keyOf = (w: string) => {
    if (!decoded.has(w)) decoded.set(w, walletPublicKey(w));
    return decoded.get(w);
  };
  const keys: Uint8Array[] = [];
  const inSet = new Set<string>();
  for (const w of ms.wallets) {
    const key = keyOf(w);
    if (!key) return { problem: `multisig wallet ${w} is invalid` };
    const hex = publicKeyHex(key);
    if (inSet.has(hex)) return { problem: `multisig wallet ${w} is listed twice` };
    inSet.add(hex);
    keys.push(key);
  }
  const signs: DecodedMultisig["signs"] = [];
  for (const s of ms.signs) {
    const key = keyOf(s.wallet);
    if (!key || !inSet.has(publicKeyHex(key))) return { problem: `multisig sign_wallet ${s.wallet} not found in wallets` };
    if (!s.nonce) return { problem: "multisig nonce is empty" };
    if (!s.sign) return { problem: "multisig sign is empty" };
    signs.push({ wallet: s.wallet, key, nonce: s.nonce, sign: s.sign });
  }
  return { threshold, keys, signs };
}

/**
 * The client-node pre-check: unless both session fields are given, a complete wallet signature or a
 * well-formed multisig must be. Undefined when fine, else the detail that follows DBC's text.
 */
export function identityProblem(req: DbcRequest): string | undefined {
  if (req.session_id && req.session_id_sign) return undefined;
  if (req.wallet && req.nonce && req.sign) return undefined;
  if (req.multisig_accounts) {
    const ms = decodeMultisig(req.multisig_accounts);
    return "problem" in ms ? ms.problem : undefined;
  }
  if (req.wallet || req.nonce || req.sign) return !req.wallet ? "wallet is empty" : !req.nonce ? "nonce is empty" : "sign is empty";
  if (req.session_id || req.session_id_sign) return !req.session_id ? "session_id is empty" : "session_id_sign is empty";
  return "send wallet, nonce and sign; or multisig_accounts; or session_id and session_id_sign";
}

/** A signer's public key (64 hex) and the nonce it signed: what a forwarded call tells its member. */
export interface SignedNonce {
  signer: string;
  nonce: string;
}

/** The signers and nonces of a request's wallet or multisig identity (none for a session). */
export function signedNonces(req: DbcRequest): SignedNonce[] {
  const uses: SignedNonce[] = [];
  if (req.multisig_accounts) {
    const decoded = decodeMultisig(req.multisig_accounts);
    if (!("problem" in decoded)) for (const s of decoded.signs) uses.push({ signer: publicKeyHex(s.key), nonce: s.nonce });
  }
  const key = req.wallet && req.nonce ? walletPublicKey(req.wallet) : undefined;
  if (key) uses.push({ signer: publicKeyHex(key), nonce: req.nonce! });
  return uses;
}

type Verified = { renter: RenterIdentity } | { problem: string };

/**
 * Decides who `/api/v1` requests act as. Order, as DBC's nodes: identity present (-25/400), node
 * rented, session id (tried first), wallet/multisig signatures and fresh nonces, then the rental
 * must be the renter's. A signature that verifies burns its nonce even when the request is refused
 * later, as in DBC. Needs `cryptoWaitReady()` to have resolved once (the agent's identity load does).
 */
export class RenterAuthority<R extends RentalSource = RentalLedger> {
  constructor(private readonly deps: RenterAuthorityDeps<R>) {}

  /** The authority over one SQLite store (migration 3's tables). */
  static open(db: Db, rentals: RentalLedger = new RentalLedger(db)): RenterAuthority {
    return new RenterAuthority({ rentals, nonces: new NonceRepo(db), sessions: new SessionRepo(db) });
  }

  get rentals(): R {
    return this.deps.rentals;
  }

  /**
   * Forgets the used nonces nobody needs refused any more: a signer's are kept while one of its
   * renters' grants is active or ended less than `retentionMs` ago (DBC's nonces carry no time, so a
   * nonce stays refused as long as its renter may act), and only its newest NONCES_PER_SIGNER.
   * Returns how many were forgotten.
   */
  forgetStaleNonces(retentionMs: number, now: Date = new Date()): number {
    const wallets = this.deps.rentals.walletsRentingSince(new Date(now.getTime() - retentionMs));
    // Renters' wallets not known (a member's terms from a master of the earlier version): every signer is kept, up to the cap.
    if (wallets === undefined) return this.deps.nonces.prune(undefined, NONCES_PER_SIGNER);
    const keep = new Set<string>();
    for (const wallet of wallets) {
      const key = walletPublicKey(wallet);
      if (key) keep.add(publicKeyHex(key));
    }
    return this.deps.nonces.prune(keep, NONCES_PER_SIGNER);
  }

  /**
   * The renter a request acts as on `nodeId`, which it rents now; else a RenterRefusal. Whom the
   * request claims to be is read first, without a signature check: a claim that is not the node's
   * renter is refused before any signature work and burns no nonce, so a stranger's request costs a
   * rental lookup and a few decodes, however large it is.
   */
  authorize(req: DbcRequest, nodeId: string, now: Date = new Date()): Renter {
    requireIdentity(req);
    // A node rented by GPU has several renters at once; the whole node, one.
    const renters = this.deps.rentals.activeRenterIds(nodeId, now);
    if (renters.size === 0) throw notRenter("machine is not be rented");
    const withSession = Boolean(req.session_id && req.session_id_sign);
    if (withSession) {
      const renter = this.deps.sessions.check(req.session_id!, req.session_id_sign!);
      if (renter) {
        if (!renters.has(renter.renterId)) throw notRenter("machine has already expired");
        return renter;
      }
    }
    const claims = claimedRenters(req);
    if (claims.length > 0 && !claims.some((c) => renters.has(c))) throw notRenter("wallet not rented");
    const found = this.verifyIdentities(req, now, withSession, renters);
    const match = found.find((r) => renters.has(r.renterId));
    if (!match) throw notRenter("wallet not rented");
    return { ...match, via: "signature" };
  }

  /**
   * On a member: burns the nonces of a call its master forwarded (the master checked the signatures
   * and sent the signers and nonces, never the signatures), so that this node refuses a replay by
   * itself, whatever the master remembers. Throws a RenterRefusal when one was used here before.
   */
  burnForwardedNonces(uses: readonly SignedNonce[], now: Date = new Date()): void {
    if (uses.length === 0) return;
    const decoded = uses.map((u) => ({ signer: Buffer.from(u.signer, "hex"), nonce: u.nonce }));
    if (!this.deps.nonces.consume(decoded, now)) throw denied("nonce check failed", "nonce is already exist");
  }

  /** Who a request is, without asking for a rental (session id or signatures); else a RenterRefusal. */
  authenticate(req: DbcRequest, now: Date = new Date()): Renter {
    requireIdentity(req);
    const withSession = Boolean(req.session_id && req.session_id_sign);
    if (withSession) {
      const renter = this.deps.sessions.check(req.session_id!, req.session_id_sign!);
      if (renter) return renter;
    }
    const [first] = this.verifyIdentities(req, now, withSession);
    return { ...first!, via: "signature" };
  }

  /**
   * `mining_nodes/session_id`: the renter of `nodeId` proves itself by wallet or multisig signature
   * (session fields are ignored, as in DBC) and gets its session id, created once and kept.
   */
  sessionId(req: DbcRequest, nodeId: string, now: Date = new Date()): { session_id: string } {
    const { session_id: _id, session_id_sign: _sign, ...signed } = req;
    const renter = this.authorize(signed, nodeId, now);
    return { session_id: this.deps.sessions.ensure(renter, now) };
  }

  /**
   * The identities a request proves by signature, multisig first (DBC's `parse_wallet`); throws when
   * none. With `only`, an identity that well-formed claims to be someone else is not checked at all.
   */
  private verifyIdentities(req: DbcRequest, now: Date, withSession: boolean, only?: ReadonlySet<string>): RenterIdentity[] {
    const results: Verified[] = [];
    const wanted = (claim: string | undefined) => only === undefined || claim === undefined || only.has(claim);
    if (req.multisig_accounts && wanted(multisigClaim(req.multisig_accounts))) results.push(this.verifyMultisig(req.multisig_accounts, now));
    if ((req.wallet || req.nonce || req.sign) && wanted(walletClaim(req.wallet))) results.push(this.verifyWallet(req, now));
    const found = results.flatMap((r) => ("renter" in r ? [r.renter] : []));
    if (found.length > 0) return found;
    if (withSession) throw notRenter("session_id is invalid");
    const problems = results.flatMap((r) => ("problem" in r ? [r.problem] : []));
    throw denied("nonce check failed", problems.join("; ") || undefined);
  }

  private verifyWallet(req: DbcRequest, now: Date): Verified {
    if (!req.wallet) return { problem: "wallet is empty" };
    if (!req.nonce) return { problem: "nonce is empty" };
    if (!req.sign) return { problem: "sign is empty" };
    const key = walletPublicKey(req.wallet);
    if (!key) return { problem: "wallet is invalid" };
    if (!verifySignature(req.nonce, req.sign, key)) return { problem: "verify sign failed" };
    if (!this.deps.nonces.consume([{ signer: key, nonce: req.nonce }], now)) return { problem: "nonce is already exist" };
    const wallet = encodeAddress(key, SS58_PREFIX);
    return { renter: { kind: "wallet", renterId: wallet, wallet } };
  }

  private verifyMultisig(ms: DbcMultisigAccounts, now: Date): Verified {
    const decoded = decodeMultisig(ms);
    if ("problem" in decoded) return decoded;
    const uses: NonceUse[] = [];
    const signed = new Set<string>();
    for (const s of decoded.signs) {
      const hex = publicKeyHex(s.key);
      if (signed.has(hex)) return { problem: `multisig sign_wallet ${s.wallet} signed twice` };
      signed.add(hex);
      if (!verifySignature(s.nonce, s.sign, s.key)) return { problem: "verify multisig sign failed" };
      uses.push({ signer: s.key, nonce: s.nonce });
    }
    // Distinct valid signers: all signs verified, none twice, and threshold <= signs (shape).
    if (!this.deps.nonces.consume(uses, now)) return { problem: "multisig nonce is already exist" };
    const wallets = decoded.keys.map((k) => encodeAddress(k, SS58_PREFIX));
    return { renter: { kind: "multisig", renterId: multisigAccountOfKeys(decoded.keys, decoded.threshold), wallets, threshold: decoded.threshold } };
  }
}

/** The renter a wallet identity claims to be (its canonical address), or undefined when malformed. */
function walletClaim(wallet: string | undefined): string | undefined {
  const key = walletPublicKey(wallet);
  return key && encodeAddress(key, SS58_PREFIX);
}

/** The renter a multisig identity claims to be (the set's account), or undefined when malformed. */
function multisigClaim(ms: DbcMultisigAccounts): string | undefined {
  const decoded = decodeMultisig(ms);
  return "problem" in decoded ? undefined : multisigAccountOfKeys(decoded.keys, decoded.threshold);
}

/** Whom a request's well-formed signature identities claim to be, before any signature is checked. */
function claimedRenters(req: DbcRequest): string[] {
  const claims: string[] = [];
  if (req.multisig_accounts) {
    const c = multisigClaim(req.multisig_accounts);
    if (c) claims.push(c);
  }
  if (req.wallet && req.nonce && req.sign) {
    const c = walletClaim(req.wallet);
    if (c) claims.push(c);
  }
  return claims;
}

/** Throws RenterRefusal "no_identity" (DBC's `-25 wallet_sign and multisig_wallets all invalid: <detail>`) when no identity is usable. */
export function requireIdentity(req: DbcRequest): void {
  const problem = identityProblem(req);
  if (problem) throw new RenterRefusal("no_identity", `${NO_IDENTITY}: ${problem}`);
}
