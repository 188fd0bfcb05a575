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
import { multisigAccount, parseThreshold, type Renter, type RenterIdentity } from "./renter.js";
import { SessionRepo } from "./session-repo.js";
import { publicKeyHex, SS58_PREFIX, verifySignature, walletPublicKey } from "./signature.js";

export interface RenterAuthorityDeps {
  rentals: RentalLedger;
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

/** DBC's client-node text when a request carries no usable identity (HTTP 400, -25). */
export const NO_IDENTITY = "wallet_sign and multisig_wallets all invalid";

const sameKey = (a: string, b: string): boolean => {
  const ka = walletPublicKey(a);
  const kb = walletPublicKey(b);
  return ka && kb ? publicKeyHex(ka) === publicKeyHex(kb) : a === b;
};

/** Why a multisig identity is unusable on its face (DBC's `check_multisig_wallets`), or undefined. */
function multisigShapeProblem(ms: DbcMultisigAccounts): string | undefined {
  const t = parseThreshold(ms.threshold);
  if (ms.wallets.length === 0 || ms.signs.length === 0) return "multisig wallet is empty";
  if (t < 1 || t > ms.wallets.length || t > ms.signs.length) return "threshold is invalid";
  for (const s of ms.signs) {
    if (!ms.wallets.some((w) => sameKey(w, s.wallet))) return `multisig sign_wallet ${s.wallet} not found in wallets`;
    if (!s.nonce) return "multisig nonce is empty";
    if (!s.sign) return "multisig sign is empty";
  }
  return undefined;
}

/**
 * The client-node pre-check: unless both session fields are given, a complete wallet signature or a
 * well-formed multisig must be. Undefined when fine, else the detail that follows DBC's text.
 */
export function identityProblem(req: DbcRequest): string | undefined {
  if (req.session_id && req.session_id_sign) return undefined;
  if (req.wallet && req.nonce && req.sign) return undefined;
  if (req.multisig_accounts) return multisigShapeProblem(req.multisig_accounts);
  if (req.wallet || req.nonce || req.sign) return !req.wallet ? "wallet is empty" : !req.nonce ? "nonce is empty" : "sign is empty";
  if (req.session_id || req.session_id_sign) return !req.session_id ? "session_id is empty" : "session_id_sign is empty";
  return "send wallet, nonce and sign; or multisig_accounts; or session_id and session_id_sign";
}

type Verified = { renter: RenterIdentity } | { problem: string };

/**
 * Decides who `/api/v1` requests act as. Order, as DBC's nodes: identity present (-25/400), node
 * rented, session id (tried first), wallet/multisig signatures and fresh nonces, then the rental
 * must be the renter's. A signature that verifies burns its nonce even when the request is refused
 * later, as in DBC. Needs `cryptoWaitReady()` to have resolved once (the agent's identity load does).
 */
export class RenterAuthority {
  constructor(private readonly deps: RenterAuthorityDeps) {}

  /** The authority over one SQLite store (migration 3's tables). */
  static open(db: Db): RenterAuthority {
    return new RenterAuthority({ rentals: new RentalLedger(db), nonces: new NonceRepo(db), sessions: new SessionRepo(db) });
  }

  get rentals(): RentalLedger {
    return this.deps.rentals;
  }

  /** The renter a request acts as on `nodeId`, which it rents now; else a RenterRefusal. */
  authorize(req: DbcRequest, nodeId: string, now: Date = new Date()): Renter {
    requireIdentity(req);
    const rental = this.deps.rentals.activeRental(nodeId, now);
    if (!rental) throw denied("machine is not be rented");
    const withSession = Boolean(req.session_id && req.session_id_sign);
    if (withSession) {
      const renter = this.deps.sessions.check(req.session_id!, req.session_id_sign!);
      if (renter) {
        if (renter.renterId !== rental.renter.renterId) throw denied("machine has already expired");
        return renter;
      }
    }
    const found = this.verifyIdentities(req, now, withSession);
    const match = found.find((r) => r.renterId === rental.renter.renterId);
    if (!match) throw denied("wallet not rented");
    return { ...match, via: "signature" };
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

  /** The identities a request proves by signature, multisig first (DBC's `parse_wallet`); throws when none. */
  private verifyIdentities(req: DbcRequest, now: Date, withSession: boolean): RenterIdentity[] {
    const results: Verified[] = [];
    if (req.multisig_accounts) results.push(this.verifyMultisig(req.multisig_accounts, now));
    if (req.wallet || req.nonce || req.sign) results.push(this.verifyWallet(req, now));
    const found = results.flatMap((r) => ("renter" in r ? [r.renter] : []));
    if (found.length > 0) return found;
    if (withSession) throw denied("session_id is invalid");
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
    const shape = multisigShapeProblem(ms);
    if (shape) return { problem: shape };
    const keys: Uint8Array[] = [];
    for (const w of ms.wallets) {
      const key = walletPublicKey(w);
      if (!key) return { problem: `multisig wallet ${w} is invalid` };
      if (keys.some((k) => publicKeyHex(k) === publicKeyHex(key))) return { problem: `multisig wallet ${w} is listed twice` };
      keys.push(key);
    }
    const uses: NonceUse[] = [];
    for (const s of ms.signs) {
      const key = walletPublicKey(s.wallet)!; // in the set: checked by the shape
      if (uses.some((u) => publicKeyHex(u.signer) === publicKeyHex(key))) {
        return { problem: `multisig sign_wallet ${s.wallet} signed twice` };
      }
      if (!verifySignature(s.nonce, s.sign, key)) return { problem: "verify multisig sign failed" };
      uses.push({ signer: key, nonce: s.nonce });
    }
    // Distinct valid signers: all signs verified, none twice, and threshold <= signs (shape).
    if (!this.deps.nonces.consume(uses, now)) return { problem: "multisig nonce is already exist" };
    const threshold = parseThreshold(ms.threshold);
    const wallets = keys.map((k) => encodeAddress(k, SS58_PREFIX));
    return { renter: { kind: "multisig", renterId: multisigAccount(wallets, threshold), wallets, threshold } };
  }
}

/** Throws RenterRefusal "no_identity" (DBC's `-25 wallet_sign and multisig_wallets all invalid: <detail>`) when no identity is usable. */
export function requireIdentity(req: DbcRequest): void {
  const problem = identityProblem(req);
  if (problem) throw new RenterRefusal("no_identity", `${NO_IDENTITY}: ${problem}`);
}
