import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Proofs of knowing the group's join token, so that the token itself never travels: a host that
 * answers discovery, or a LAN neighbour that captures a join, learns nothing it can replay.
 *
 * Both directions are HMAC-SHA256 keyed by the join token over a domain tag and a JSON array, so a
 * proof made for one purpose (or one master, one member, one moment) can never pass for another:
 * - the master proves itself to a member by MACing the member's random challenge (`masterProof`);
 * - the member proves itself to the master by MACing what it asks to be recorded as, bound to that
 *   master's node id, a time and a nonce (`memberJoinProof`).
 */

/** A join proof older (or further in the future) than this is refused. */
export const JOIN_PROOF_MAX_SKEW_MS = 30_000;

/** A fresh random challenge or nonce: 16 bytes, hex. */
export const newNonce = (): string => randomBytes(16).toString("hex");

const mac = (token: string, tag: string, fields: unknown[]): string =>
  createHmac("sha256", token).update(`${tag}\n${JSON.stringify(fields)}`).digest("hex");

/** Compares two hex MACs in constant time; anything malformed is simply unequal. */
function macEquals(given: string, expected: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  return timingSafeEqual(Buffer.from(given, "hex"), Buffer.from(expected, "hex"));
}

/** Who a master says it is, and its proof over the asker's challenge. */
export interface MasterHello {
  node_id: string;
  group_name: string;
  /** masterProof(token, node_id, group_name, challenge), hex. */
  proof: string;
}

export function masterProof(token: string, nodeId: string, groupName: string, challenge: string): string {
  return mac(token, "batu-master/1", [nodeId, groupName, challenge]);
}

/** Whether a master's hello was made by a holder of `token` for this very `challenge`. */
export function verifyMasterProof(token: string, hello: MasterHello, challenge: string): boolean {
  return macEquals(hello.proof, masterProof(token, hello.node_id, hello.group_name, challenge));
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
}

export function memberJoinProof(token: string, claim: JoinClaim): string {
  return mac(token, "batu-join/1", [claim.masterNodeId, claim.nodeId, claim.address, claim.nickname, claim.at, claim.nonce]);
}

/**
 * The master's check of a join proof: for this master, fresh, never seen, made with the token.
 * Returns the reason it fails, or null when it holds (and then remembers the nonce).
 */
export class JoinProofVerifier {
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => Date = () => new Date()) {}

  check(token: string, claim: JoinClaim, proof: string): string | null {
    const now = this.now().getTime();
    for (const [nonce, at] of this.seen) if (now - at > 2 * JOIN_PROOF_MAX_SKEW_MS) this.seen.delete(nonce);
    if (Math.abs(now - claim.at) > JOIN_PROOF_MAX_SKEW_MS) return "the join proof's time is more than 30 s away from the master's clock";
    if (this.seen.has(claim.nonce)) return "the join proof was replayed";
    if (!macEquals(proof, memberJoinProof(token, claim))) return "the join proof does not match this group's join token";
    this.seen.set(claim.nonce, now);
    return null;
  }
}
