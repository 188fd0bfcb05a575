import { base58Encode, randomAsU8a } from "@polkadot/util-crypto";
import { prepared, type Db } from "../store/db.js";
import type { VersionedMemo } from "../store/versioned-memo.js";
import { VersionedTable } from "../store/versioned-table.js";
import type { Renter, RenterIdentity } from "./renter.js";
import { VerifiedSignatures } from "./verified-signatures.js";

/** Longest session id accepted in a request; ours are 44 characters. */
export const MAX_SESSION_ID_LENGTH = 128;

/** How many session ids' renters a SessionRepo keeps in memory. */
export const SESSION_MEMO_MAX = 4096;

interface Row {
  renter_id: string;
  session_id: string;
  kind: "wallet" | "multisig";
  wallets_json: string;
  threshold: number | null;
}

// Frozen: the repo hands the renters it keeps to every caller.
function toRenter(r: Row): Renter {
  const wallets = Object.freeze(JSON.parse(r.wallets_json) as string[]) as string[];
  return Object.freeze(
    r.kind === "wallet"
      ? { kind: "wallet", renterId: r.renter_id, wallet: wallets[0] ?? "", via: "session" }
      : { kind: "multisig", renterId: r.renter_id, wallets, threshold: r.threshold ?? 0, via: "session" },
  );
}

/**
 * Renters' session ids (DBC's `sessionid.db`): one per renter, created on first request and kept
 * across restarts, never rotated. A third party holding the session id and a renter's signature of
 * it acts as the renter; the signature may come from the wallet or from any wallet of the multisig set.
 */
export class SessionRepo {
  // Every session request looks its session id up: kept while renter_sessions is unchanged.
  private readonly renters: VersionedMemo<Renter | undefined>;
  private readonly sessions: VersionedTable;

  constructor(
    private readonly db: Db,
    /** Session signatures that verified: a client sends the same one on every request. */
    private readonly verified: VerifiedSignatures = new VerifiedSignatures(),
  ) {
    this.sessions = new VersionedTable(db, "renter_sessions");
    this.renters = this.sessions.cache(SESSION_MEMO_MAX);
  }

  /** The renter's session id, created (random, base58) when it has none. */
  ensure(renter: RenterIdentity, now: Date): string {
    const existing = this.get(renter.renterId);
    if (existing) return existing;
    const sessionId = base58Encode(randomAsU8a(32));
    const wallets = renter.kind === "wallet" ? [renter.wallet] : renter.wallets;
    this.sessions.write(() =>
      prepared(
        this.db,
        `INSERT INTO renter_sessions (renter_id, session_id, kind, wallets_json, threshold, created_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (renter_id) DO NOTHING`,
      ).run(
        renter.renterId,
        sessionId,
        renter.kind,
        JSON.stringify(wallets),
        renter.kind === "multisig" ? renter.threshold : null,
        now.toISOString(),
      ),
    );
    return this.get(renter.renterId) ?? sessionId;
  }

  /** The renter's session id, if it has one. */
  get(renterId: string): string | undefined {
    const row = prepared(this.db, "SELECT session_id FROM renter_sessions WHERE renter_id = ?").get(renterId) as
      | { session_id: string }
      | undefined;
    return row?.session_id;
  }

  /**
   * The renter (`via: "session"`) whose session id this is, when `sessionIdSign` is a signature of the
   * session id by the renter's wallet or by any wallet of its multisig set; else undefined.
   */
  check(sessionId: string, sessionIdSign: string): Renter | undefined {
    if (!sessionId || sessionId.length > MAX_SESSION_ID_LENGTH || !sessionIdSign) return undefined;
    const renter = this.renters.get(sessionId, () => {
      const row = prepared(this.db, "SELECT * FROM renter_sessions WHERE session_id = ?").get(sessionId) as Row | undefined;
      return row && toRenter(row);
    });
    if (!renter) return undefined;
    const wallets = renter.kind === "wallet" ? [renter.wallet] : renter.wallets;
    // Known-good first: for a multisig set, a full check of each wallet before the signer's would cost one each.
    if (wallets.some((w) => this.verified.has(sessionId, w, sessionIdSign))) return renter;
    return wallets.some((w) => this.verified.verify(sessionId, w, sessionIdSign)) ? renter : undefined;
  }
}
