/**
 * A member's rental terms as its master sends them in each heartbeat answer: the ledger lives on the
 * master, and each member ends its renters' VMs by these terms (rental/expiry.ts) and, while no
 * master is reachable, serves its renters' direct calls by them (rental/member-rentals.ts). Signed
 * by the master's node key over the member's node id and the heartbeat's `sent_at`: a member accepts
 * only the answer to the heartbeat it just sent, from the master it joined.
 *
 * Two signatures, so that members and masters one version apart understand each other: the first
 * (`signature`, tag /1) covers each renter and its end, as the first protocol did; the second
 * (`grants_signature`, tag /2) covers those and what each grant gives (GPUs, caps) and, for a
 * multisig renter, its wallets. A member of the earlier version checks the first and ignores the
 * rest; a master of the earlier version sends no second, and its members then know no grant's limits.
 */
import type { GroupHeartbeatReply } from "../api/host.js";
import type { GrantTerms, RentalGrants, RentalLimits, RentalTerms } from "../auth/rental-ledger.js";
import { createHash } from "node:crypto";
import { sealEnvelope, envelopeMessage, type Authenticator } from "../auth/signed-envelope.js";

const RENTAL_TERMS_TAG = "batu-rental-terms/1";
const RENTAL_GRANTS_TAG = "batu-rental-terms/2";

export type SignedTerms = NonNullable<GroupHeartbeatReply["rental_terms"]>;
type WireRenter = SignedTerms["renters"][number];
type WireLimits = NonNullable<WireRenter["limits"]>;

/** What a member holds of its master's terms: undefined `grants` when its master sent none (an earlier version). */
export interface MemberTerms {
  renters: RentalTerms;
  grants: RentalGrants | undefined;
}

/** The limits in signing order: the signature covers a fixed serialization, never JSON key order. */
const LIMIT_KEYS = ["gpus", "cpu_cores", "mem_gib", "disk_gib", "disk_iops", "disk_mbps", "net_mbit"] as const satisfies readonly (keyof WireLimits)[];

const toWire = (l: RentalLimits): WireLimits => ({
  gpus: l.gpus,
  cpu_cores: l.cpuCores,
  mem_gib: l.memGib,
  disk_gib: l.diskGib,
  disk_iops: l.diskIops,
  disk_mbps: l.diskMBps,
  net_mbit: l.netMbit,
});

const fromWire = (w: WireLimits): RentalLimits => ({
  gpus: w.gpus,
  cpuCores: w.cpu_cores,
  memGib: w.mem_gib,
  diskGib: w.disk_gib,
  diskIops: w.disk_iops,
  diskMBps: w.disk_mbps,
  netMbit: w.net_mbit,
});

function termsFields(memberNodeId: string, sentAt: number, renters: readonly WireRenter[]): unknown[] {
  return [memberNodeId, sentAt, ...renters.flatMap((r) => [r.renter, r.ends_at])];
}

function grantsFields(memberNodeId: string, sentAt: number, renters: readonly WireRenter[]): unknown[] {
  return [memberNodeId, sentAt, ...renters.map((r) => [r.renter, r.ends_at, LIMIT_KEYS.map((k) => r.limits?.[k] ?? null), r.wallets ?? []])];
}

/** A grant as its fields in a fixed order (never an object's key order), null for none. */
function grantFields(grant: GrantTerms | undefined): unknown[] | null {
  if (!grant) return null;
  const wire = toWire(grant.limits);
  return [LIMIT_KEYS.map((k) => wire[k]), grant.wallets ?? []];
}

const sha256 = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("hex");

/**
 * What a member says it holds, so that the master signs and sends terms only when they changed (a
 * signature per heartbeat would double the master's heartbeat work). Of the ends alone (the first
 * protocol's digest) when no grants are known; of ends and grants otherwise.
 */
export function rentalTermsDigest(terms: RentalTerms, grants?: RentalGrants): string {
  if (grants === undefined) {
    let digest = digests.get(terms);
    if (digest === undefined) digests.set(terms, (digest = sha256([...terms])));
    return digest;
  }
  const kept = grantDigests.get(terms);
  if (kept?.grants === grants) return kept.digest;
  const digest = sha256(["grants", [...terms].map(([renter, endsAt]) => [renter, endsAt, grantFields(grants.get(renter))])]);
  grantDigests.set(terms, { grants, digest });
  return digest;
}

/** Digests of the terms Maps seen (the ledger hands out one Map per node while its table is unchanged). */
const digests = new WeakMap<RentalTerms, string>();
const grantDigests = new WeakMap<RentalTerms, { grants: RentalGrants; digest: string }>();

/**
 * Whether the digest a member sent says it holds these terms already: either digest, so that a member
 * of the earlier version (which knows only the first) is not sent its terms at every heartbeat.
 */
export function holdsTerms(digest: string | undefined, terms: RentalTerms, grants: RentalGrants | undefined): boolean {
  if (digest === undefined) return false;
  return digest === rentalTermsDigest(terms) || (grants !== undefined && digest === rentalTermsDigest(terms, grants));
}

/** The master's side: `terms` (and, where given, `grants`) of the member `memberNodeId`, signed for its heartbeat of `sentAt`. */
export function sealRentalTerms(terms: RentalTerms, memberNodeId: string, sentAt: number, masterKey: Authenticator, grants?: RentalGrants): SignedTerms {
  const renters: WireRenter[] = [...terms].map(([renter, endsAt]) => {
    const grant = grants?.get(renter);
    return { renter, ends_at: endsAt, ...(grant ? { limits: toWire(grant.limits), ...(grant.wallets ? { wallets: grant.wallets } : {}) } : {}) };
  });
  return {
    renters,
    signature: sealEnvelope(masterKey, RENTAL_TERMS_TAG, termsFields(memberNodeId, sentAt, renters)),
    ...(grants ? { grants_signature: sealEnvelope(masterKey, RENTAL_GRANTS_TAG, grantsFields(memberNodeId, sentAt, renters)) } : {}),
  };
}

/**
 * The member's side: the terms of its heartbeat of `sentAt`, when the master's key signed them;
 * undefined otherwise (absent, forged, another member's or another heartbeat's). Grants are taken
 * only under their own signature; terms without one have none.
 */
export function openRentalTerms(
  signed: SignedTerms | undefined,
  memberNodeId: string,
  sentAt: number,
  masterKey: Authenticator,
): MemberTerms | undefined {
  if (!signed) return undefined;
  const renters: RentalTerms = new Map(signed.renters.map((r) => [r.renter, r.ends_at]));
  if (signed.grants_signature !== undefined) {
    if (!masterKey.verify(envelopeMessage(RENTAL_GRANTS_TAG, grantsFields(memberNodeId, sentAt, signed.renters)), signed.grants_signature)) return undefined;
    const grants: RentalGrants = new Map();
    for (const r of signed.renters) {
      if (r.limits) grants.set(r.renter, { limits: fromWire(r.limits), ...(r.wallets ? { wallets: r.wallets } : {}) });
    }
    return { renters, grants };
  }
  if (!masterKey.verify(envelopeMessage(RENTAL_TERMS_TAG, termsFields(memberNodeId, sentAt, signed.renters)), signed.signature)) return undefined;
  return { renters, grants: undefined };
}
