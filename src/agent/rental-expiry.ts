import type { AgentState } from "./state.js";
import type { Logger } from "../lib/logger.js";
import type { Vms } from "../vm/vms.js";
import type { VmRepo } from "../vm/repo.js";
import { DEFAULT_RENTAL_RETENTION_MS, RentalExpiry } from "../rental/expiry.js";

/** How often used nonces past their retention are forgotten. */
const NONCE_SWEEP_MS = 3600_000;

/**
 * Ends rentals on this host (rental/expiry.ts): its renters' VMs by the terms of its ledger, or its
 * master's on a member, swept again at once whenever those change; and forgets used nonces past the
 * same retention (`rental_retention_days` in config.json). Returns the stop function.
 */
export function startRentalExpiry(deps: {
  state: AgentState;
  vms: Vms;
  repo: VmRepo;
  /** RenterAuthority.forgetStaleNonces of this agent's role (agent/renters.ts). */
  forgetStaleNonces: (retentionMs: number) => number;
  log: Logger;
}): () => void {
  const { state, vms, repo, log } = deps;
  const days = state.files.system.rental_retention_days;
  const retentionMs = days === undefined ? DEFAULT_RENTAL_RETENTION_MS : Math.round(days * 24 * 3600 * 1000);
  const expiry = new RentalExpiry({
    vms: {
      list: () => vms.queries.list(),
      isLive: (id) => vms.queries.isLive(id),
      act: (id, action) => vms.service.act(id, action),
      setRentalEnd: (id, end) => repo.setRentalEnd(id, end),
      log: (id, line) => repo.log(id, line),
    },
    terms: () => state.group.ownRentalTerms(),
    retentionMs,
    log,
  });
  state.rentals.onChange(() => expiry.poke());
  state.group.onRentalTermsChange(() => expiry.poke());
  expiry.start();
  // Every master sweeps its own copy by the same rule: a follower keeps the nonces of the renter calls
  // it answered itself (never etcd's), and the leader's deletes reach its copy of the others.
  const forgetNonces = () => {
    const forgotten = deps.forgetStaleNonces(retentionMs);
    if (forgotten > 0) log.info({ forgotten }, "used nonces past their retention forgotten");
  };
  forgetNonces();
  const nonceTimer = setInterval(forgetNonces, NONCE_SWEEP_MS).unref();
  return () => {
    expiry.stop();
    clearInterval(nonceTimer);
  };
}
