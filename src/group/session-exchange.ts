/**
 * Both sides of the session-key exchange (session-keys.ts): the member asks, the master answers, each
 * proving itself with its node key; both then hold the same key.
 */
import type { GroupSession, GroupSessionReply } from "../api/host-group-session.js";
import { ApiError } from "../api/errors.js";
import { IncreasingCounters } from "../auth/replay-store.js";
import { EnvelopeChecker, envelopeMessage, nodeKeyAuthenticator, sealEnvelope, type Authenticator, type EnvelopeRefusal } from "../auth/signed-envelope.js";
import {
  deriveSessionKey,
  ephemeralKey,
  newKeyId,
  SESSION_GRACE_MS,
  SESSION_REPLY_TAG,
  SESSION_TAG,
  SESSION_TTL_MS,
  type SessionKeys,
} from "./session-keys.js";

/** A session request older (or further in the future) than this is refused, as a heartbeat is. */
const SESSION_MAX_SKEW_MS = 30_000;

const requestFields = (b: Omit<GroupSession, "signature">) => [b.node_id, b.member_key, b.sent_at];
const replyFields = (nodeId: string, memberKey: string, r: Omit<GroupSessionReply, "signature" | "message">) => [nodeId, memberKey, r.master_key, r.key_id, r.ttl_s];

const REFUSALS: Record<EnvelopeRefusal, string> = {
  skew: "session refused: sent_at is more than 30 s away from the master's clock",
  malformed: "session refused: sent_at is not a time",
  replayed: "session refused: replayed (sent_at not newer than the last one)",
  proof: "session refused: the signature does not match node_id",
};

/** The master's side: checks a member's request, agrees a key, holds it, and answers signed. */
export class SessionAnswerer {
  private readonly lastSentAt = new IncreasingCounters();
  private readonly checker = new EnvelopeChecker(SESSION_MAX_SKEW_MS, this.lastSentAt);

  constructor(
    private readonly sessions: SessionKeys,
    /** The master's node key: it signs the answer, so the member knows whose key it agreed. */
    private readonly masterKey: Authenticator,
  ) {}

  /** Throws ApiError("unauthorized") naming the reason. The caller has checked that the node is a member. */
  answer(body: GroupSession, now: Date): GroupSessionReply {
    const { signature, ...rest } = body;
    const refused = this.checker.check(
      { tag: SESSION_TAG, fields: requestFields(rest), at: body.sent_at, replayKey: { signer: body.node_id, counter: body.sent_at }, proof: signature },
      nodeKeyAuthenticator(body.node_id),
      now,
    );
    if (refused) throw new ApiError("unauthorized", REFUSALS[refused]);
    const own = ephemeralKey();
    const keyId = newKeyId();
    const key = deriveSessionKey(own.privateKey, body.member_key, { memberNodeId: body.node_id, keyId, memberKeyHex: body.member_key, masterKeyHex: own.publicHex });
    this.sessions.hold(body.node_id, keyId, key, SESSION_TTL_MS + SESSION_GRACE_MS);
    const reply = { key_id: keyId, master_key: own.publicHex, ttl_s: Math.round((SESSION_TTL_MS + SESSION_GRACE_MS) / 1000) };
    return { message: "ok", ...reply, signature: sealEnvelope(this.masterKey, SESSION_REPLY_TAG, replyFields(body.node_id, body.member_key, reply)) };
  }

  forget(nodeId: string): void {
    this.lastSentAt.forget(nodeId);
    this.sessions.forget(nodeId);
  }
}

/**
 * The member's side: opens a session with its master through `send` (the pinned TLS channel), checks
 * the answer was signed by the master it joined (`masterNodeId`), and holds the key. Throws when the
 * master refuses or the answer does not hold.
 */
export async function openSession(opts: {
  nodeId: string;
  masterNodeId: string;
  /** The member's node key. */
  key: Authenticator;
  sessions: SessionKeys;
  now: Date;
  send: (body: GroupSession) => Promise<GroupSessionReply>;
}): Promise<void> {
  const own = ephemeralKey();
  const request = { node_id: opts.nodeId, member_key: own.publicHex, sent_at: opts.now.getTime() };
  const reply = await opts.send({ ...request, signature: sealEnvelope(opts.key, SESSION_TAG, requestFields(request)) });
  const { signature, message: _ok, ...fields } = reply;
  const master = nodeKeyAuthenticator(opts.masterNodeId);
  if (!master.verify(envelopeMessage(SESSION_REPLY_TAG, replyFields(opts.nodeId, own.publicHex, fields)), signature)) {
    throw new Error("the master's session answer is not signed by its node key");
  }
  const key = deriveSessionKey(own.privateKey, reply.master_key, { memberNodeId: opts.nodeId, keyId: reply.key_id, memberKeyHex: own.publicHex, masterKeyHex: reply.master_key });
  // Renewed by the member before the master lets it go: its own hold ends with the master's.
  opts.sessions.hold(opts.masterNodeId, reply.key_id, key, reply.ttl_s * 1000);
}
