import { oneDataVersionDuring } from "../../../store/db.js";
import { GroupSession, GroupSessionReply } from "../../../api/host-group-session.js";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ErrorReply } from "../../../api/common.js";
import {
  BecomeMember,
  BecomeMemberReply,
  GroupHeartbeat,
  GroupHeartbeatReply,
  GroupJoin,
  GroupJoinReply,
  GroupList,
  GroupListQuery,
  GroupMember,
  GroupRemove,
  GroupRemoveReply,
  MasterHello,
  MasterHelloQuery,
  MyMaster,
} from "../../../api/host.js";
import { bearerToken } from "../../../auth/secrets.js";
import { MemberListJson } from "../../../group/member-list.js";
import { LentBuffers } from "../../../lib/lent-buffers.js";
import type { AppDeps } from "../../deps.js";

/** Seed 000 `/master/...` and `/slave/...`: the group of hosts. */
export const groupRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const joinSchema = {
    summary: "Record the calling member in this master's group (join token)",
    description:
      "Seed 000 names this `/master/group/json`; the original code served `/master/group/join`. Both work. " +
      "Re-joining updates the member's record. The address defaults to the caller's IP and port 10000. " +
      "Authenticated by `Authorization: Bearer <join token>` (seed 000) or, without any header, by `proof`: " +
      "an HMAC keyed by the join token (src/group/join-proof.ts), which is how batu members join, so the " +
      "token never crosses the network. From another host, over HTTPS only (403 over plain HTTP).",
    tags: ["group"],
    security: [],
    body: GroupJoin,
    response: { 200: GroupJoinReply, 400: ErrorReply, 401: ErrorReply, 409: ErrorReply },
  };
  for (const url of ["/master/group/json", "/master/group/join"]) {
    // Public on the hook's level: the service checks the bearer token or the proof, in constant time.
    // From another host over TLS only: a seed 000 join carries the join token itself.
    app.post(url, { schema: joinSchema, config: { auth: "public", transport: "tls" } }, async (req) =>
      deps.group.recordJoin(req.body, req.ip, bearerToken(req.headers.authorization)),
    );
  }

  app.get(
    "/master/group/hello",
    {
      schema: {
        summary: "Who this master is, with a proof over the caller's challenge that it holds the join token",
        description:
          "What a joining host asks first (and what SSDP discovery answers carry): it joins only a master whose " +
          "proof checks against the token it was given, so a host that merely claims the address learns nothing.",
        tags: ["group"],
        security: [],
        querystring: MasterHelloQuery,
        response: { 200: MasterHello, 400: ErrorReply, 409: ErrorReply },
      },
      config: { auth: "public" },
    },
    async (req) => deps.group.hello(req.query.challenge),
  );

  app.post(
    "/master/group/heartbeat",
    {
      schema: {
        summary: "A member's periodic report (a MAC with its session key, or signed with its node key; no token)",
        description:
          "The member proves the heartbeat message (node id, address, nickname, sent_at, capacity) with `key_id` and " +
          "`mac`, an HMAC with the session key it agreed (`/master/group/session`), or with `signature`, by the sr25519 " +
          "key of the node id it joined with. An unknown session key is refused (401) and the member opens a new one. Refused when sent_at is more than 30 s from the master's clock, not newer " +
          "than the last one accepted, or not signed by that node; 404 when the node is no member (removed). The " +
          "answer carries the member's rental terms (when each renter's use of it ends), signed by the master's node key.",
        tags: ["group"],
        security: [],
        body: GroupHeartbeat,
        response: { 200: GroupHeartbeatReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
      // Public on the token level: the service checks the member's signature instead.
      config: { auth: "public", transport: "tls", quietLog: true },
    },
    // Its rental terms and grants share one look at the store's data_version (a query each, else).
    async (req) => oneDataVersionDuring(() => deps.group.recordHeartbeat(req.body, req.ip, req.socket.localAddress?.replace(/^::ffff:/, ""))),
  );

  app.post(
    "/master/group/session",
    {
      schema: {
        summary: "A member agrees a session key with its master (both sides sign with their node keys; no token)",
        description:
          "The member sends a fresh X25519 public key signed by its node key; the master answers with its own and a key id, " +
          "signed by its node key. Both derive the same key (HKDF-SHA256), which proves the member's heartbeats and the " +
          "master's forwarded calls by HMAC until `ttl_s`. 404 when the node is no member.",
        tags: ["group"],
        security: [],
        body: GroupSession,
        response: { 200: GroupSessionReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply },
      },
      config: { auth: "public", transport: "tls" },
    },
    async (req) => deps.group.openSession(req.body),
  );

  app.post(
    "/master/group/remove",
    {
      schema: {
        summary: "Forget a member, by node_id or address (a dead member is never forgotten by itself)",
        tags: ["group"],
        body: GroupRemove,
        response: { 200: GroupRemoveReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => deps.group.remove(req.body),
  );

  /** group/list's answer, serialized member by member (made at the first call: it needs the route's serializer). */
  let listJson: MemberListJson | undefined;
  // The answer (1 MB for 1,000 members) is joined in a buffer lent until the response closes.
  const listBuffers = new LentBuffers();
  app.get(
    "/master/group/list",
    {
      schema: {
        summary: "The members of this master's group",
        description:
          "Without a query, every member (seed 000). For large groups: `state` keeps the members in that state, " +
          "`limit` returns a page (with `total` and `next`, the `after` of the next page; null on the last).",
        tags: ["group"],
        querystring: GroupListQuery,
        response: { 200: GroupList, 400: ErrorReply, 401: ErrorReply, 409: ErrorReply },
      },
    },
    async (req, reply) => {
      const { head, selection } = deps.group.listSelection({
        ...(req.query.state !== undefined ? { state: req.query.state } : {}),
        ...(req.query.limit !== undefined ? { limit: Number(req.query.limit) } : {}),
        ...(req.query.after !== undefined ? { after: req.query.after } : {}),
      });
      // Each member's part by GroupMember's own serializer, kept while the member is unchanged: the text is the schema's.
      listJson ??= new MemberListJson(reply.compileSerializationSchema(GroupMember) as (m: GroupMember) => string);
      const { bytes, release } = listBuffers.concat(listJson.answerParts(head, selection));
      reply.raw.once("close", release);
      return reply.type("application/json; charset=utf-8").send(bytes as never);
    },
  );

  app.get(
    "/slave/group/my/master",
    {
      schema: {
        summary: "The master of this member's group",
        tags: ["group"],
        response: { 200: MyMaster, 401: ErrorReply, 409: ErrorReply },
      },
    },
    async () => deps.group.myMaster(),
  );

  app.post(
    "/slave/group/join",
    {
      schema: {
        summary: "Make this host a member of a master's group (batu addition; what `batu group join` calls)",
        tags: ["group"],
        body: BecomeMember,
        response: { 200: BecomeMemberReply, 400: ErrorReply, 401: ErrorReply, 409: ErrorReply, 502: ErrorReply },
      },
    },
    async (req) => deps.group.becomeMember(req.body),
  );
};
