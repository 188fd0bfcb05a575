import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ErrorReply } from "../../../api/common.js";
import { ApiError } from "../../../api/errors.js";
import { RentGrant, RentGrantReply, RentList, RentListQuery, RentRevoke } from "../../../api/host-rent.js";
import { rentalItem, type RentalLedger, type RentalLimits, type RevokeTarget } from "../../../auth/rental-ledger.js";
import type { RenterSpec } from "../../../auth/renter.js";
import type { GroupService } from "../../../group/service.js";

/** Exactly one of `wallet` and `multisig_accounts`, as a renter spec. */
function renterSpec(body: { wallet?: string | undefined; multisig_accounts?: RentGrant["multisig_accounts"] }): RenterSpec {
  if (body.wallet !== undefined && body.multisig_accounts !== undefined) {
    throw new ApiError("bad_request", "wallet: give either wallet or multisig_accounts, not both");
  }
  if (body.wallet !== undefined) return { wallet: body.wallet };
  if (body.multisig_accounts !== undefined) return { multisig: body.multisig_accounts };
  throw new ApiError("bad_request", "wallet: is required (or multisig_accounts)");
}

function revokeTarget(body: RentRevoke): RevokeTarget {
  if (body.id !== undefined) {
    if (body.node_id !== undefined || body.wallet !== undefined || body.multisig_accounts !== undefined) {
      throw new ApiError("bad_request", "id: give either id, or node_id with wallet or multisig_accounts");
    }
    return { id: Number(body.id) };
  }
  if (body.node_id === undefined) throw new ApiError("bad_request", "id: is required (or node_id with wallet or multisig_accounts)");
  return { nodeId: body.node_id, renter: renterSpec(body) };
}

/**
 * The operator's rental ledger, `/common/rent/...` (admin token, the auth hook's default): grants of
 * nodes to renters that the renter API (`/api/v1`) checks as DBC checks the chain.
 */
export const rentRoutes: FastifyPluginAsyncTypebox<{
  deps: {
    rentals: RentalLedger;
    now?: () => Date;
    nodeGpus?: (nodeId: string) => Promise<number | undefined>;
    /** This master's node, and whether it is one of several (group/ha): then its node is no renter's. */
    group?: Pick<GroupService, "nodeId" | "sharedMasters">;
  };
}> = async (
  app,
  { deps },
) => {
  const { rentals } = deps;
  const now = deps.now ?? (() => new Date());

  app.post(
    "/common/rent/grant",
    {
      schema: {
        summary: "Rent a node, or some of its GPUs, to a wallet or a multisig set until a time",
        description:
          "Give `wallet` or `multisig_accounts`. The node id need not be known yet (it may join later). " +
          "Without `gpus` the whole node goes to this renter alone: refused (409) while another renter has any of it. " +
          "With `gpus`, several renters share the node, as long as their GPUs add up to no more than the node's; " +
          "`cpu_cores`, `mem_gib` and `disk_gib` cap what the renter's VMs there may hold; `disk_iops`, `disk_mbps` and " +
          "`net_mbit` cap each of its VMs' disk I/O and network (applied at each boot; else the node's defaults). " +
          "Granting a node its renter already has moves `until` and sets what it gives.",
        tags: ["rent"],
        body: RentGrant,
        response: { 200: RentGrantReply, 400: ErrorReply, 401: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => {
      const until = new Date(req.body.until);
      if (Number.isNaN(until.getTime())) throw new ApiError("bad_request", "until: is not a valid time");
      const at = now();
      const b = req.body;
      // Every master of a group with several presents the group's node id: that node is no machine a renter could use.
      if (deps.group?.sharedMasters && b.node_id.toLowerCase() === deps.group.nodeId) {
        throw new ApiError("conflict", "node_id: this group has several masters, which host no renters' tasks: grant a member's node");
      }
      // Only what is given: granting again to the same renter keeps the rest of what its rental gives.
      const limits: Partial<RentalLimits> = {
        ...(b.gpus !== undefined ? { gpus: b.gpus } : {}),
        ...(b.cpu_cores !== undefined ? { cpuCores: b.cpu_cores } : {}),
        ...(b.mem_gib !== undefined ? { memGib: b.mem_gib } : {}),
        ...(b.disk_gib !== undefined ? { diskGib: b.disk_gib } : {}),
        ...(b.disk_iops !== undefined ? { diskIops: b.disk_iops } : {}),
        ...(b.disk_mbps !== undefined ? { diskMBps: b.disk_mbps } : {}),
        ...(b.net_mbit !== undefined ? { netMbit: b.net_mbit } : {}),
      };
      const nodeGpus = await deps.nodeGpus?.(b.node_id.toLowerCase());
      const rental = rentals.grant(b.node_id, renterSpec(b), until, at, limits, nodeGpus);
      return { message: "ok" as const, rental: rentalItem(rental, at) };
    },
  );

  app.get(
    "/common/rent/list",
    {
      schema: {
        summary: "The rental ledger, oldest first",
        tags: ["rent"],
        querystring: RentListQuery,
        response: { 200: RentList, 400: ErrorReply, 401: ErrorReply },
      },
    },
    async (req) => {
      const at = now();
      const filter = { ...(req.query.node_id ? { nodeId: req.query.node_id } : {}), ...(req.query.state ? { state: req.query.state } : {}) };
      return { rentals: rentals.list(filter, at).map((r) => rentalItem(r, at)) };
    },
  );

  app.post(
    "/common/rent/revoke",
    {
      schema: {
        summary: "End a rental now",
        description: "By `id`, or by `node_id` with the renter's `wallet` or `multisig_accounts`. Revoking twice is harmless.",
        tags: ["rent"],
        body: RentRevoke,
        response: { 200: RentGrantReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply },
      },
    },
    async (req) => {
      const at = now();
      return { message: "ok" as const, rental: rentalItem(rentals.revoke(revokeTarget(req.body), at), at) };
    },
  );
};
