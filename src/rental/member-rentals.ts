/**
 * A member's rentals, as its master last told them (group/rental-terms.ts): when each renter's use
 * of this node ends, and what its grant gives. A member keeps no ledger of its own; it serves the
 * renter calls addressed to it directly (while no master is reachable, or at any time) by these
 * terms: a renter may act while its end is in the future, on this node only. Terms past their end
 * authorize nothing, whether they came in a heartbeat answer or were read back after a restart.
 */
import type { RentalSource } from "../auth/authorize.js";
import type { RentalLimits } from "../auth/rental-ledger.js";
import type { MemberTerms } from "../group/rental-terms.js";

export class MemberRentals implements RentalSource {
  constructor(
    /** This member's node id: the one node its terms are about. */
    private readonly nodeId: string,
    /** The terms held now; undefined before any (a member that never heard from its master). */
    private readonly terms: () => MemberTerms | undefined,
  ) {}

  activeRenterIds(nodeId: string, now: Date): Set<string> {
    const terms = this.terms();
    if (!terms || nodeId.toLowerCase() !== this.nodeId) return new Set();
    const at = now.toISOString();
    return new Set([...terms.renters].filter(([, endsAt]) => endsAt > at).map(([renter]) => renter));
  }

  /**
   * The wallets of every renter whose use ended after `since` (a wallet renter's id is its wallet; a
   * multisig renter's wallets come with its grant); undefined when a multisig renter's are not known.
   */
  walletsRentingSince(since: Date): Set<string> | undefined {
    const terms = this.terms();
    if (!terms) return new Set();
    const at = since.toISOString();
    const wallets = new Set<string>();
    for (const [renter, endsAt] of terms.renters) {
      if (endsAt <= at) continue;
      if (!terms.grants) return undefined;
      const grant = terms.grants.get(renter);
      if (!grant) return undefined;
      for (const w of grant.wallets ?? [renter]) wallets.add(w);
    }
    return wallets;
  }

  /** DBC's machine state of this node by the terms: `rented` while a renter's use has not ended. */
  nodeState(nodeId: string, now: Date = new Date()): "rented" | "online" {
    return this.activeRenterIds(nodeId, now).size > 0 ? "rented" : "online";
  }

  /** What `renterId`'s grant gives while it rents this node; undefined when it does not, or when the master sent no grants. */
  limitsOf(renterId: string, nodeId: string, now: Date = new Date()): RentalLimits | undefined {
    if (!this.activeRenterIds(nodeId, now).has(renterId)) return undefined;
    return this.terms()?.grants?.get(renterId)?.limits;
  }

  /** Whether the held terms say what grants give: false when they came from a master of the earlier version. */
  get grantsKnown(): boolean {
    return this.terms()?.grants !== undefined;
  }
}
