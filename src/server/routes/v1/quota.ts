import type { FastifyRequest } from "fastify";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { RentalLimits } from "../../../auth/rental-ledger.js";
import { GRANT_FIELD, parseLimits } from "../../../rental/quota.js";
import { FieldError } from "../../../vm/create-request.js";
import type { V1Deps } from "./deps.js";
import { forwardedRenter } from "./target.js";

/**
 * What the renter's rental of this node gives, for a task's creation or change: from this agent's
 * own ledger, or, in a call the master forwarded, from the master (the one source a member trusts).
 */
export function quotaFor(req: FastifyRequest<{ Body: DbcRequest }>, deps: V1Deps, owner: string): RentalLimits | undefined {
  const a = (req.body.additional ?? {}) as Record<string, unknown>;
  const forwarded = forwardedRenter(req) !== undefined;
  if (a[GRANT_FIELD] !== undefined) {
    if (!forwarded) throw new FieldError(GRANT_FIELD, `${GRANT_FIELD} is given by the group's master only`);
    const limits = parseLimits(a[GRANT_FIELD]);
    if (!limits) throw new FieldError(GRANT_FIELD, `${GRANT_FIELD} is invalid`);
    return limits;
  }
  return forwarded ? undefined : deps.renters.limits?.(owner, deps.nodeId);
}
