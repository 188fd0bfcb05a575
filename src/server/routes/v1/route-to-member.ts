import type { FastifyReply, FastifyRequest } from "fastify";
import type { DbcRequest } from "../../../api/v1/request.js";
import type { V1Deps, V1Group } from "./deps.js";
import { resolveTarget, type Target } from "./target.js";
import { LAN_ATTACHMENT_FIELD, type LanAttachment } from "../../../network/lan/model.js";
import { LAN_ROUTES } from "./lan.js";
import { FieldError } from "../../../vm/create-request.js";
import { GRANT_FIELD } from "../../../rental/quota.js";
import { signedNonces } from "../../../auth/authorize.js";
import { FORWARDED_NONCES_FIELD } from "./forwarded-nonces.js";
import { changesTask } from "./quota.js";

/** Routes answered on the master even for a member's node: they need only the master's ledger and registries. */
const ANSWERED_HERE = new Set(["/api/v1/mining_nodes/session_id", ...LAN_ROUTES]);

/**
 * preHandler on a master: a POST whose `peer_nodes_list[0]` is a member's node is authenticated here
 * (the rental ledger is here) and forwarded to that member; its reply goes back unchanged.
 */
export function routeToMember(deps: V1Deps, group: V1Group) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const target = memberTarget(req, deps);
    if (!target) return undefined;
    const route = req.routeOptions.url;
    const body = req.body as DbcRequest;
    // Every call acts for a renter but node info (mining_nodes), which needs no identity.
    const renter = route === "/api/v1/mining_nodes" ? null : deps.renters.authorize(body, target.nodeId);
    refuseMastersFields(body);
    // A task made on a LAN network gets its address from the registry here, sent to the member in
    // the call this master signs (the one source of LAN NICs a member trusts).
    const lan = route === "/api/v1/tasks/start" && renter !== null ? attachLan(deps, body, renter, target.nodeId) : undefined;
    // A task's creation or change is checked against the renter's rental on the member: its limits go with the call.
    const limits = changesTask(req) && renter !== null ? deps.renters.limits?.(renter, target.nodeId) : undefined;
    const forwarded = lan || limits ? { ...body, additional: { ...body.additional, ...(lan ? { [LAN_ATTACHMENT_FIELD]: lan } : {}), ...(limits ? { [GRANT_FIELD]: limits } : {}) } } : body;
    // The renter's credentials stop here: the member gets the renter id this master vouches for
    // (signed), never a signature or session it could replay anywhere; only the signers' nonces,
    // which it burns too (a replay is then refused on the node whatever the master remembers).
    let r;
    try {
      const nonces = signedNonces(body);
      const sentBody = { ...withoutCredentials(forwarded), ...(nonces.length > 0 ? { [FORWARDED_NONCES_FIELD]: nonces } : {}) };
      r = await group.router.forward(target.peer, { method: req.method, url: req.url, bodyText: JSON.stringify(sentBody), renter });
    } catch (e) {
      // No answer: the member may have made the task all the same. The address stays held until its
      // heartbeats tell (freed after a grace when it does not report it); only a call never sent frees it now.
      if (lan && (target.peer.state === "dead" || !target.peer.tls)) deps.lans?.registry.release(lan.network, lan.ip);
      throw e;
    }
    if (lan) settleLan(deps, lan, r.body);
    const sent = route === "/api/v1/mining_nodes" ? withLedgerState(r.body, deps.renters.nodeState(target.nodeId)) : r.body;
    return reply.status(r.status).header("content-type", r.contentType).send(sent);
  };
}

/**
 * The member a call is routed to; undefined when this agent answers it (a route answered here, no
 * node named, this agent's own node). Throws DbcError for a node that is served nowhere here.
 */
export function memberTarget(req: FastifyRequest, deps: V1Deps): (Target & { kind: "member" }) | undefined {
  const route = req.routeOptions.url;
  if (req.method !== "POST" || route === undefined || ANSWERED_HERE.has(route)) return undefined;
  const body = req.body as DbcRequest;
  if (body.peer_nodes_list.length === 0) return undefined;
  const target = resolveTarget(body, deps);
  return target.kind === "member" ? target : undefined;
}

/** The LAN network a `tasks/start` asks a NIC on (`additional.network_name`); undefined for none. */
export function lanNetworkAsked(body: DbcRequest): string | undefined {
  const name = ((body.additional ?? {}) as Record<string, unknown>).network_name;
  return typeof name === "string" && name !== "" ? name : undefined;
}

/** A request body without the renter's identity fields: what a member is sent. */
function withoutCredentials(body: DbcRequest): DbcRequest {
  const { wallet: _w, nonce: _n, sign: _s, session_id: _i, session_id_sign: _g, multisig_accounts: _m, ...rest } = body;
  return rest;
}

/**
 * A member's node info with the rental state of the master's ledger: the member's own ledger has no
 * rentals (they are granted on the master), so it would always say "online". The one field changed.
 */
function withLedgerState(body: Buffer, state: "online" | "rented"): Buffer {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { errcode?: unknown; message?: Record<string, unknown> };
    if (parsed.errcode !== 0 || typeof parsed.message !== "object" || parsed.message === null) return body;
    parsed.message.state = state;
    return Buffer.from(JSON.stringify(parsed));
  } catch {
    return body;
  }
}

/** The fields only this master puts in a call to a member (a LAN NIC, the renter's rental limits): a renter's own are refused. */
function refuseMastersFields(body: DbcRequest): void {
  const additional = (body.additional ?? {}) as Record<string, unknown>;
  for (const field of [LAN_ATTACHMENT_FIELD, GRANT_FIELD]) {
    if (additional[field] !== undefined) throw new FieldError(field, `${field} is given by the group's master only`);
  }
}

/** The LAN NIC a `tasks/start` for a member asks (`network_name`), from this master's registry; undefined for none. */
function attachLan(deps: V1Deps, body: DbcRequest, renter: string, nodeId: string): LanAttachment | undefined {
  const name = lanNetworkAsked(body);
  if (name === undefined || !deps.lans) return undefined;
  return deps.lans.registry.attach(name, renter, nodeId);
}

/** The member made the task (its address is bound to the task id) or refused it (the address is free again). */
function settleLan(deps: V1Deps, lan: LanAttachment, reply: Buffer): void {
  let taskId: string | null = null;
  // A DBC answer refusing the task frees the address; one that is not DBC's (a proxy's error page) says nothing.
  let parsed: { errcode?: unknown; message?: { task_id?: unknown } } | undefined;
  try {
    parsed = JSON.parse(reply.toString("utf8")) as { errcode?: unknown; message?: { task_id?: unknown } };
    if (parsed.errcode === 0 && typeof parsed.message?.task_id === "string") taskId = parsed.message.task_id;
    if (typeof parsed.errcode !== "number") parsed = undefined;
  } catch {
    parsed = undefined;
  }
  if (taskId) deps.lans?.registry.bindTask(lan.network, lan.ip, taskId);
  else if (parsed !== undefined) deps.lans?.registry.release(lan.network, lan.ip);
}
