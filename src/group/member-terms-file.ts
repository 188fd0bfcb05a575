/**
 * The last rental terms a member accepted from its master, kept in `conf/rental_terms.json` so that a
 * member restarted while no master is reachable still serves its renters (and still ends their VMs
 * on time). Kept as the master signed them, with the heartbeat time they were signed for, and checked
 * again at load against the master's node key: a file edited by hand, or left from another master,
 * authorizes nothing.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeJsonFileAtomic } from "../config/json-file.js";
import { nodeKeyAuthenticator } from "../auth/signed-envelope.js";
import type { SignedRentalTerms } from "../api/host-rental-terms.js";
import type { Logger } from "../lib/logger.js";
import { openRentalTerms, type MemberTerms } from "./rental-terms.js";

export const RENTAL_TERMS_FILE = "rental_terms.json";

interface StoredTerms {
  master_node_id: string;
  sent_at: number;
  rental_terms: SignedRentalTerms;
}

/**
 * Whether a value read back has the shape written: enough for the signature check to run on it (the
 * signature then decides, so nothing else in it needs checking). The wire schema's `date-time` format
 * is the HTTP layer's to check, which TypeBox's `Value` alone does not know.
 */
function isStoredTerms(v: unknown): v is StoredTerms {
  const o = v as Partial<StoredTerms> | null;
  const terms = o?.rental_terms;
  return (
    typeof o?.master_node_id === "string" &&
    Number.isSafeInteger(o.sent_at) &&
    typeof terms?.signature === "string" &&
    (terms.grants_signature === undefined || typeof terms.grants_signature === "string") &&
    Array.isArray(terms.renters) &&
    terms.renters.every(
      (r) =>
        typeof r?.renter === "string" &&
        typeof r.ends_at === "string" &&
        (r.limits === undefined || (typeof r.limits === "object" && r.limits !== null)) &&
        (r.wallets === undefined || (Array.isArray(r.wallets) && r.wallets.every((w) => typeof w === "string"))),
    )
  );
}

export class MemberTermsFile {
  private readonly path: string;

  constructor(
    confDir: string,
    private readonly log: Logger,
  ) {
    this.path = join(confDir, RENTAL_TERMS_FILE);
  }

  /** Keeps terms just accepted (atomically: a crash leaves the previous ones). A failed write is logged: the terms still serve until the agent stops. */
  save(masterNodeId: string, sentAt: number, signed: SignedRentalTerms): void {
    try {
      writeJsonFileAtomic(this.path, { master_node_id: masterNodeId, sent_at: sentAt, rental_terms: signed }, 0o600);
    } catch (e) {
      this.log.warn({ file: this.path, err: (e as Error).message }, "rental terms not kept on disk: a restart while the master is down would forget them");
    }
  }

  /** The terms kept for `memberNodeId` from the master `masterNodeId`, when its key signed them; undefined otherwise. */
  load(memberNodeId: string, masterNodeId: string): MemberTerms | undefined {
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(this.path, "utf8"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn({ file: this.path, err: (e as Error).message }, "kept rental terms unreadable: ignored");
      return undefined;
    }
    if (!isStoredTerms(value)) {
      this.log.warn({ file: this.path }, "kept rental terms malformed: ignored");
      return undefined;
    }
    if (value.master_node_id !== masterNodeId) return undefined; // another master's: this member joined a new one since
    const terms = openRentalTerms(value.rental_terms, memberNodeId, value.sent_at, nodeKeyAuthenticator(masterNodeId));
    if (!terms) this.log.warn({ file: this.path }, "kept rental terms not signed by the master's node key: ignored");
    return terms;
  }
}
