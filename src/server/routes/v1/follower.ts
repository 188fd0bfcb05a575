/**
 * Renter calls on a master of several that does not lead (group/ha; docs/ha.md, "Followers"). A call
 * the master only routes to a member (the member's node runs it: tasks, disks, snapshots... of a
 * member) the follower answers itself, as the leader would (route-to-member.ts): it checks the
 * renter against its copy of the rentals and sessions, burns the call's nonces in its own store, and
 * forwards them with the call, which the member burns too. So a replay is refused by this follower
 * before it forwards, and by the member whichever master it reaches. Those nonce rows stay this
 * master's: only the leader ships writes to etcd, and a row etcd brings later replaces its own.
 *
 * Everything else goes to the leader with the body as read: calls that write the group's tables (a
 * session id, LAN networks, a task on a LAN network), and those a master answers itself, whose nonce
 * only the master would burn (a follower's own would not stop a replay through another master).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { DbcRequest } from "../../../api/v1/request.js";
import { RenterRefusal } from "../../../auth/errors.js";
import type { V1Deps, V1Group, V1Leader } from "./deps.js";
import { lanNetworkAsked, memberTarget, routeToMember } from "./route-to-member.js";

/** Whether a follower answers this call itself: one routed to a member that writes none of the group's tables. */
export function answeredByFollower(req: FastifyRequest, deps: V1Deps): boolean {
  let routed: boolean;
  try {
    routed = memberTarget(req, deps) !== undefined;
  } catch {
    // A node this copy does not know: perhaps one that joined a moment ago. The leader answers.
    return false;
  }
  if (!routed) return false;
  // A task on a LAN network takes its address from the group's registry: a write of the shared tables.
  return !(req.routeOptions.url === "/api/v1/tasks/start" && lanNetworkAsked(req.body as DbcRequest) !== undefined);
}

/**
 * The preHandler that routes renter calls to members on a master of several: while it leads, that of
 * any master; while it follows, calls it does not answer itself are passed to the leader, and so is
 * a call its copy of the rentals refuses (`not_renter`: a grant or session made a moment ago may not
 * have reached it yet; the leader's answer is the group's). `bodyText` is each call's body as received.
 */
export function routeOnHaMaster(deps: V1Deps, group: V1Group, leader: V1Leader, bodyText: (req: FastifyRequest) => string | undefined) {
  const toMember = routeToMember(deps, group);
  const passOn = async (req: FastifyRequest, reply: FastifyReply) => {
    await leader.passOn(req, reply, bodyText(req) ?? "");
    return reply;
  };
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    if (!leader.follows()) return toMember(req, reply);
    if (!answeredByFollower(req, deps)) return passOn(req, reply);
    try {
      return await toMember(req, reply);
    } catch (e) {
      if (e instanceof RenterRefusal && e.reason === "not_renter") return passOn(req, reply);
      throw e;
    }
  };
}
