import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { DbcError, ok } from "../../../api/v1/envelope.js";
import { DbcRequest } from "../../../api/v1/request.js";
import { lanInfo } from "../../../network/lan/registry.js";
import { LAN_ATTACHMENT_FIELD, parseLanAttachment, type LanAttachment } from "../../../network/lan/model.js";
import { FieldError } from "../../../vm/create-request.js";
import type { V1Deps, V1Lans } from "./deps.js";
import { forwardedRenter, resolveTarget } from "./target.js";

type Req = FastifyRequest<{ Body: DbcRequest; Params: { name?: string } }>;

/** `lan/*` routes, answered where the group's LAN registry is (a master, or a lone agent), for any node of the group. */
export const LAN_ROUTES = ["/api/v1/lan", "/api/v1/lan/create", "/api/v1/lan/delete/:name", "/api/v1/lan/:name"];

/** The registry, where this agent keeps it; a member tells the renter where to ask. */
function registryOf(deps: V1Deps): V1Lans["registry"] {
  if (!deps.lans) throw new DbcError(1, "LAN networks are not served here");
  if (!deps.lans.holdsRegistry()) {
    throw new DbcError(1, "LAN networks are kept by the group's master: make this call through the master");
  }
  return deps.lans.registry;
}

/**
 * DBC's LAN networks (reference §4.6): made, listed and deleted by their renter, for the whole group.
 * The renter proves its rental of the node it names (`peer_nodes_list[0]`), any node of the group.
 */
export const lanRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  const schema = (summary: string, description?: string) => ({ summary, tags: ["dbc"], body: DbcRequest, ...(description ? { description } : {}) });
  const renter = (req: Req) => deps.renters.authorize(req.body, resolveTarget(req.body, deps).nodeId);
  const text = (v: unknown) => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));

  app.post(
    "/lan/create",
    {
      schema: schema(
        "Create a LAN network (additional: network_name, ip_cidr)",
        "A private network for the renter's tasks across the group's hosts (VXLAN between them). Its name is unique in the group.",
      ),
    },
    async (req: Req) => {
      const owner = renter(req);
      const a = (req.body.additional ?? {}) as Record<string, unknown>;
      registryOf(deps).create(text(a.network_name), text(a.ip_cidr), owner);
      return ok("ok");
    },
  );

  app.post("/lan/delete/:name", { schema: schema("Delete a LAN network (its owner; none of its tasks left)") }, async (req: Req) => {
    registryOf(deps).remove(req.params.name!, renter(req));
    return ok("ok");
  });

  app.post("/lan", { schema: schema("The caller's LAN networks") }, async (req: Req) => {
    const registry = registryOf(deps);
    return ok(registry.list(renter(req)).map((n) => lanInfo(n, registry.addresses(n.name))));
  });

  app.post("/lan/:name", { schema: schema("One of the caller's LAN networks") }, async (req: Req) => {
    const registry = registryOf(deps);
    const net = registry.owned(req.params.name!, renter(req));
    return ok(lanInfo(net, registry.addresses(net.name)));
  });
};

/**
 * The LAN NIC of a task about to be made here, if it asks one: given by this agent's registry (a
 * lone agent, or a master for its own node), or by the master in a call it forwarded (the one
 * source a member trusts). The address is held from now: `done` binds it to the task or frees it.
 */
export function lanForTask(req: FastifyRequest<{ Body: DbcRequest }>, deps: V1Deps, owner: string): { lan: LanAttachment | undefined; done: (taskId: string | null) => void } {
  const a = (req.body.additional ?? {}) as Record<string, unknown>;
  const none = { lan: undefined, done: () => undefined };
  if (a[LAN_ATTACHMENT_FIELD] !== undefined) {
    if (forwardedRenter(req) === undefined) throw new FieldError(LAN_ATTACHMENT_FIELD, `${LAN_ATTACHMENT_FIELD} is given by the group's master only`);
    const lan = parseLanAttachment(a[LAN_ATTACHMENT_FIELD]);
    if (!lan) throw new FieldError("network_name", "invalid network info");
    return { lan, done: () => undefined };
  }
  const name = typeof a.network_name === "string" ? a.network_name : "";
  const lans = deps.lans;
  if (name === "" || !lans?.holdsRegistry()) return none;
  const lan = lans.registry.attach(name, owner, deps.nodeId);
  return { lan, done: (taskId) => (taskId ? lans.registry.bindTask(lan.network, lan.ip, taskId) : lans.registry.release(lan.network, lan.ip)) };
}
