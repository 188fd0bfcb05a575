import type { AgentState } from "./state.js";
import { RenterAuthority, type RentalSource } from "../auth/authorize.js";
import { NonceRepo } from "../auth/nonce-repo.js";
import { SessionRepo } from "../auth/session-repo.js";
import type { RentalLedger, RentalLimits } from "../auth/rental-ledger.js";
import { MemberRentals } from "../rental/member-rentals.js";
import type { RenterAuth } from "../server/routes/v1/deps.js";

/** Who may act on this node: the renter API's side, and the sweep of used nonces past their retention. */
export interface AgentRenters {
  renters: RenterAuth;
  /** Forgets used nonces no renter needs refused any more (RenterAuthority.forgetStaleNonces); how many. */
  forgetStaleNonces(retentionMs: number): number;
}

/**
 * The rentals of this agent's node: its own ledger's grants (a master's, an agent's in no group, or
 * what a member's operator granted there), and on a member the terms its master last sent (kept
 * across restarts, so it serves renter calls addressed to it directly while no master is reachable).
 * A renter either names may act; what its grant gives comes from the master's terms first.
 */
export class AgentRentals implements RentalSource {
  constructor(
    private readonly ledger: RentalLedger,
    private readonly member: MemberRentals,
  ) {}

  activeRenterIds(nodeId: string, now: Date): Set<string> {
    const own = this.ledger.activeRenterIds(nodeId, now);
    for (const renter of this.member.activeRenterIds(nodeId, now)) own.add(renter);
    return own;
  }

  walletsRentingSince(since: Date): Set<string> | undefined {
    const fromTerms = this.member.walletsRentingSince(since);
    if (fromTerms === undefined) return undefined;
    for (const wallet of this.ledger.walletsRentingSince(since)) fromTerms.add(wallet);
    return fromTerms;
  }

  nodeState(nodeId: string, now: Date = new Date()): "rented" | "online" {
    return this.activeRenterIds(nodeId, now).size > 0 ? "rented" : "online";
  }

  limitsOf(renterId: string, nodeId: string, now: Date = new Date()): RentalLimits | undefined {
    return this.member.limitsOf(renterId, nodeId, now) ?? this.ledger.rentalOf(nodeId, renterId, now)?.limits;
  }

  /** Whether `renterId` rents `nodeId` by the master's terms alone, and those say nothing of what grants give. */
  grantUnknown(renterId: string, nodeId: string, now: Date = new Date()): boolean {
    return !this.member.grantsKnown && this.member.activeRenterIds(nodeId, now).has(renterId) && !this.ledger.rentalOf(nodeId, renterId, now);
  }
}

/** The renter authority of this agent, over its own used nonces and sessions (a member's master keeps its own). */
export function agentRenters(state: AgentState): AgentRenters {
  const rentals = new AgentRentals(state.rentals, new MemberRentals(state.identity.nodeId, () => state.group.memberTerms()));
  const authority = new RenterAuthority({ rentals, nonces: new NonceRepo(state.db), sessions: new SessionRepo(state.db) });
  return {
    renters: {
      authorize: (body, nodeId) => authority.authorize(body, nodeId).renterId,
      sessionId: (body, nodeId) => authority.sessionId(body, nodeId).session_id,
      burnForwardedNonces: (uses) => authority.burnForwardedNonces(uses),
      nodeState: (nodeId) => rentals.nodeState(nodeId),
      limits: (renterId, nodeId) => rentals.limitsOf(renterId, nodeId),
      grantUnknown: (renterId, nodeId) => rentals.grantUnknown(renterId, nodeId),
    },
    forgetStaleNonces: (retentionMs) => authority.forgetStaleNonces(retentionMs),
  };
}
