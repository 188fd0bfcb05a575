/**
 * A member's rental terms as its master sends them in each heartbeat answer: the ledger lives on the
 * master, and each member ends its renters' VMs by these terms (rental/expiry.ts). Signed by the
 * master's node key over the member's node id and the heartbeat's `sent_at`: a member accepts only
 * the answer to the heartbeat it just sent, from the master it joined.
 */
import type { GroupHeartbeatReply } from "../api/host.js";
import type { RentalTerms } from "../auth/rental-ledger.js";
import { createHash } from "node:crypto";
import { sealEnvelope, envelopeMessage, type Authenticator } from "../auth/signed-envelope.js";

const RENTAL_TERMS_TAG = "batu-rental-terms/1";

type SignedTerms = NonNullable<GroupHeartbeatReply["rental_terms"]>;

function termsFields(memberNodeId: string, sentAt: number, renters: SignedTerms["renters"]): unknown[] {
  return [memberNodeId, sentAt, ...renters.flatMap((r) => [r.renter, r.ends_at])];
}

/**
 * What a member says it holds, so that the master signs and sends terms only when they changed (a
 * signature per heartbeat would double the master's heartbeat work).
 */
export function rentalTermsDigest(terms: RentalTerms): string {
  let digest = digests.get(terms);
  if (digest === undefined) {
    digest = createHash("sha256").update(JSON.stringify([...terms])).digest("hex");
    digests.set(terms, digest);
  }
  return digest;
}

/** Digests of the terms Maps seen (the ledger hands out one Map per node while its table is unchanged). */
const digests = new WeakMap<RentalTerms, string>();

/** The master's side: `terms` of the member `memberNodeId`, signed for its heartbeat of `sentAt`. */
export function sealRentalTerms(terms: RentalTerms, memberNodeId: string, sentAt: number, masterKey: Authenticator): SignedTerms {
  const renters = [...terms].map(([renter, endsAt]) => ({ renter, ends_at: endsAt }));
  return { renters, signature: sealEnvelope(masterKey, RENTAL_TERMS_TAG, termsFields(memberNodeId, sentAt, renters)) };
}

/**
 * The member's side: the terms of its heartbeat of `sentAt`, when the master's key signed them;
 * undefined otherwise (absent, forged, another member's or another heartbeat's).
 */
export function openRentalTerms(
  signed: SignedTerms | undefined,
  memberNodeId: string,
  sentAt: number,
  masterKey: Authenticator,
): RentalTerms | undefined {
  if (!signed) return undefined;
  const message = envelopeMessage(RENTAL_TERMS_TAG, termsFields(memberNodeId, sentAt, signed.renters));
  if (!masterKey.verify(message, signed.signature)) return undefined;
  return new Map(signed.renters.map((r) => [r.renter, r.ends_at]));
}
