import type { AgentState } from "./state.js";
import { RenterAuthority } from "../auth/authorize.js";
import { NonceRepo } from "../auth/nonce-repo.js";
import { MemberRentals } from "../rental/member-rentals.js";
import type { RenterAuth } from "../server/routes/v1/deps.js";

/** Who may act on this node: the renter API's side, and the sweep of used nonces past their retention. */
export interface AgentRenters {
  renters: RenterAuth;
  /** Forgets used nonces no renter needs refused any more (RenterAuthority.forgetStaleNonces); how many. */
  forgetStaleNonces(retentionMs: number): number;
}

/**
 * The renter authority of this agent's role, chosen at each call (a host joins a group at run time):
 * on a master, or an agent in no group, its own rental ledger and sessions; on a member, the terms
 * its master last sent (kept across restarts), so that it serves renter calls addressed to it
 * directly while no master is reachable. Sessions live on the master: a member takes signatures only.
 * Both burn nonces in this agent's own used_nonces table.
 */
export function agentRenters(state: AgentState): AgentRenters {
  const ledger = RenterAuthority.open(state.db, state.rentals);
  const memberRentals = new MemberRentals(state.identity.nodeId, () => state.group.memberTerms());
  const member = new RenterAuthority({ rentals: memberRentals, nonces: new NonceRepo(state.db) });
  const onMember = () => state.group.isMember;
  const authority = () => (onMember() ? member : ledger);
  return {
    renters: {
      authorize: (body, nodeId) => authority().authorize(body, nodeId).renterId,
      sessionId: (body, nodeId) => authority().sessionId(body, nodeId).session_id,
      nodeState: (nodeId) => (onMember() ? memberRentals.nodeState(nodeId) : state.rentals.nodeState(nodeId)),
      limits: (renterId, nodeId) => (onMember() ? memberRentals.limitsOf(renterId, nodeId) : state.rentals.rentalOf(nodeId, renterId)?.limits),
      grantsUnknown: () => onMember() && !memberRentals.grantsKnown,
    },
    forgetStaleNonces: (retentionMs) => authority().forgetStaleNonces(retentionMs),
  };
}
