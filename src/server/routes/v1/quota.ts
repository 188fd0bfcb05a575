import type { FastifyRequest } from "fastify";
import { DbcError } from "../../../api/v1/envelope.js";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { RentalLimits } from "../../../auth/rental-ledger.js";
import { GRANT_FIELD, parseLimits } from "../../../rental/quota.js";
import { FieldError } from "../../../vm/create-request.js";
import type { V1Deps } from "./deps.js";
import { forwardedRenter } from "./target.js";

/** Whether a call creates or grows a task: what is checked against the renter's rental (its GPUs and caps). */
export function changesTask(req: FastifyRequest): boolean {
  const route = req.routeOptions.url;
  return (
    route === "/api/v1/tasks/start" ||
    route === "/api/v1/disk/add/:id" ||
    route === "/api/v1/disk/resize/:id" ||
    (route === "/api/v1/tasks/:verb/:id" && (req.params as { verb?: string }).verb === "modify")
  );
}

/**
 * What the renter's rental of this node gives, for a task's creation or change: from this agent's
 * own ledger, or, in a call the master forwarded, from the master (the one source a member trusts);
 * in a call made to a member directly, from the terms its master last sent. A member whose master
 * sent no grants (an earlier version) refuses the calls that would need them.
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
  if (forwarded) return undefined;
  if (changesTask(req) && deps.renters.grantUnknown?.(owner, deps.nodeId)) {
    throw new DbcError(
      -3,
      "check authority failed: this member's master (an earlier version) did not say what your rental gives: " +
        "creating or growing a task needs it; make the call through the master",
    );
  }
  return deps.renters.limits?.(owner, deps.nodeId);
}
