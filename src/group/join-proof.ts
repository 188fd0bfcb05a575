import { randomBytes } from "node:crypto";
import { EnvelopeChecker, envelopeMessage, hmacAuthenticator, nodeKeyAuthenticator, sealEnvelope, type Authenticator } from "../auth/signed-envelope.js";
import { WindowedNonces } from "../auth/replay-store.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";

/**
 * Proofs of knowing the group's join token, so that the token itself never travels: a host that
 * answers discovery, or a LAN neighbour that captures a join, learns nothing it can replay.
 *
 * Both directions are signed envelopes (auth/signed-envelope.ts) with an HMAC-SHA256 keyed by the
 * join token over a domain tag and a JSON array, so a proof made for one purpose (or one master, one member, one moment) can never pass for another:
 * - the master proves itself to a member by MACing the member's random challenge (`masterProof`);
 * - the member proves itself to the master by MACing what it asks to be recorded as, bound to that
 *   master's node id, a time and a nonce (`memberJoinProof`).
 * Each side's TLS certificate is pinned by its node key: the master signs its TLS port and
 * certificate over the member's challenge (`masterTlsSignature`), the member's key proof covers its own.
 */

/** A join proof older (or further in the future) than this is refused. */
export const JOIN_PROOF_MAX_SKEW_MS = 30_000;

/** A fresh random challenge or nonce: 16 bytes, hex. */
export const newNonce = (): string => randomBytes(16).toString("hex");

const MASTER_TAG = "batu-master/1";
const JOIN_TAG = "batu-join/1";
const JOIN_KEY_TAG = "batu-join-key/1";
const MASTER_TLS_TAG = "batu-master-tls/1";
const DISCOVERY_TAG = "batu-discovery/1";
const masterFields = (nodeId: string, groupName: string, challenge: string) => [nodeId, groupName, challenge];
const joinFields = (c: JoinClaim) => [c.masterNodeId, c.nodeId, c.address, c.nickname, c.at, c.nonce, c.tlsPort, c.certSha256];
const masterTlsFields = (nodeId: string, challenge: string, tls: TlsEndpoint) => [nodeId, challenge, tls.port, tls.sha256];

/** Who a master says it is, and its proof over the asker's challenge. */
export interface MasterHello {
  node_id: string;
  group_name: string;
  /** masterProof(token, node_id, group_name, challenge), hex. */
  proof: string;
  /** Where it serves TLS, and its certificate, signed by its node key over the challenge (`tls_signature`). */
  tls_port?: number | undefined;
  cert_sha256?: string | undefined;
  tls_signature?: string | undefined;
}

/** The master's node key signature over its TLS endpoint, bound to the asker's challenge. */
export function masterTlsSignature(nodeKey: Authenticator, nodeId: string, challenge: string, tls: TlsEndpoint): string {
  return sealEnvelope(nodeKey, MASTER_TLS_TAG, masterTlsFields(nodeId, challenge, tls));
}

/**
 * The TLS endpoint a hello names, when the node key of `nodeId` signed it over this very `challenge`;
 * null otherwise (none named, another key, another challenge: a replayed or forged hello).
 */
export function verifyMasterTls(hello: MasterHello, challenge: string, nodeId: string): TlsEndpoint | null {
  if (hello.tls_port === undefined || hello.cert_sha256 === undefined || hello.tls_signature === undefined) return null;
  const tls = { port: hello.tls_port, sha256: hello.cert_sha256 };
  const message = envelopeMessage(MASTER_TLS_TAG, masterTlsFields(nodeId, challenge, tls));
  return nodeKeyAuthenticator(nodeId).verify(message, hello.tls_signature) ? tls : null;
}

export function masterProof(token: string, nodeId: string, groupName: string, challenge: string): string {
  return sealEnvelope(hmacAuthenticator(token), MASTER_TAG, masterFields(nodeId, groupName, challenge));
}

/** Whether a master's hello was made by a holder of `token` for this very `challenge`. */
export function verifyMasterProof(token: string, hello: MasterHello, challenge: string): boolean {
  return hmacAuthenticator(token).verify(envelopeMessage(MASTER_TAG, masterFields(hello.node_id, hello.group_name, challenge)), hello.proof);
}

/**
 * A master's SSDP answer proof: like its hello proof, and bound to the address it answers from
 * (`ip:port` of its agent), so an answer relayed by another host, pointing joiners at itself, fails.
 */
export function discoveryProof(token: string, nodeId: string, groupName: string, challenge: string, address: string): string {
  return sealEnvelope(hmacAuthenticator(token), DISCOVERY_TAG, [...masterFields(nodeId, groupName, challenge), address]);
}

/** Whether an SSDP answer that came from `address` (source IP, announced port) was made by a holder of `token` for `challenge`. */
export function verifyDiscoveryProof(token: string, hello: MasterHello, challenge: string, address: string): boolean {
  const message = envelopeMessage(DISCOVERY_TAG, [...masterFields(hello.node_id, hello.group_name, challenge), address]);
  return hmacAuthenticator(token).verify(message, hello.proof);
}

/** What a member asks to be recorded as, and when. */
export interface JoinClaim {
  masterNodeId: string;
  nodeId: string;
  address: string;
  nickname: string;
  /** The member's clock, ms since the epoch. */
  at: number;
  nonce: string;
  /** Where the member serves TLS, and its certificate (null: a join that names none). */
  tlsPort: number | null;
  certSha256: string | null;
}

export function memberJoinProof(token: string, claim: JoinClaim): string {
  return sealEnvelope(hmacAuthenticator(token), JOIN_TAG, joinFields(claim));
}

/**
 * A member's proof of holding the key of the node id it claims: its node key's signature over the
 * same claim (this master, this address, this time and nonce), so a join-token holder cannot claim
 * another member's node id, and a known node id never moves without its key.
 */
export function memberKeyProof(nodeKey: Authenticator, claim: JoinClaim): string {
  return sealEnvelope(nodeKey, JOIN_KEY_TAG, joinFields(claim));
}

/** Whether `proof` is the claimed node's key signature over the claim. */
export function verifyMemberKeyProof(claim: JoinClaim, proof: string): boolean {
  return nodeKeyAuthenticator(claim.nodeId).verify(envelopeMessage(JOIN_KEY_TAG, joinFields(claim)), proof);
}

/** Why a join proof is refused, as the master answers it. */
const REFUSALS = {
  skew: "the join proof's time is more than 30 s away from the master's clock",
  malformed: "the join proof's nonce is malformed", // unreachable: any nonce string is a replay key
  replayed: "the join proof was replayed",
  proof: "the join proof does not match this group's join token",
} as const;

/**
 * The master's check of a join proof: for this master, fresh, never seen, made with the token.
 * Returns the reason it fails, or null when it holds (and then remembers the nonce).
 */
export class JoinProofVerifier {
  // Nonces outlive the window in which a proof is fresh, so a replay is always one or the other.
  private readonly checker = new EnvelopeChecker(JOIN_PROOF_MAX_SKEW_MS, new WindowedNonces(2 * JOIN_PROOF_MAX_SKEW_MS));

  constructor(private readonly now: () => Date = () => new Date()) {}

  check(token: string, claim: JoinClaim, proof: string): string | null {
    const envelope = { tag: JOIN_TAG, fields: joinFields(claim), at: claim.at, replayKey: claim.nonce, proof };
    const refused = this.checker.check(envelope, hmacAuthenticator(token), this.now());
    return refused && REFUSALS[refused];
  }
}
