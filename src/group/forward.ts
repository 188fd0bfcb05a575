import { createHash, randomBytes } from "node:crypto";
import type { Agent, IncomingHttpHeaders, IncomingMessage } from "node:http";
import { HttpTransportError, openHttp, sendHttp } from "../sdk/http.js";
import { EnvelopeChecker, envelopeMessage, nodeKeyAuthenticator, sealEnvelope, type Authenticator, type EnvelopeRefusal } from "../auth/signed-envelope.js";
import { WindowedNonces } from "../auth/replay-store.js";
import { DbcError } from "../api/v1/envelope.js";
import { MemberConnections } from "./member-connections.js";
import type { GroupPeer } from "./master-role.js";
import { joinAddress, splitAddress } from "./local-address.js";
import { UNKNOWN_SESSION, type SessionKeys } from "./session-keys.js";

/** Headers of a renter call the master forwards to a member. */
export const FORWARD_HEADERS = {
  /** The forwarding master's node id. */
  by: "x-batu-forwarded-by",
  /** The renter id the master authenticated; empty for calls that need no identity (node info). */
  renter: "x-batu-renter",
  /** The master's clock, ms since the epoch. */
  at: "x-batu-forward-at",
  /** Random, used once: a captured call cannot be replayed within the time window. */
  nonce: "x-batu-forward-nonce",
  /** The master's proof over `forwardMessage(...)`, hex: an sr25519 signature by its node key, or an HMAC with the session key named by `key`. */
  sig: "x-batu-forward-sig",
  /** The session key (group/session-keys.ts) the proof is an HMAC with; absent: a node-key signature. */
  key: "x-batu-forward-key",
} as const;

/** The refusal of a forwarded call made with a key the member does not hold (it restarted): the master signs it again. */
const UNKNOWN_FORWARD_KEY_STATUS = 401;

/** A forwarded call older (or further in the future) than this is refused. */
export const FORWARD_MAX_SKEW_MS = 30_000;
/** How long a forwarding master waits for the TCP connection to a member: the "fail fast" bound. */
export const FORWARD_CONNECT_TIMEOUT_MS = 2_000;
/** How long it waits for the member's reply once connected (a suspect member gets the connect bound). */
export const FORWARD_REPLY_TIMEOUT_MS = 10_000;

export interface ForwardCall {
  method: string;
  /** Path and query, exactly as the member will see it. */
  url: string;
  bodyText: string;
  renter: string | null;
}

export interface ForwardReply {
  status: number;
  contentType: string;
  body: Buffer;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

const FORWARD_TAG = "batu-forward/1";

/** What the body hash covers for a call without a body (an event stream's GET): the first protocol's choice. */
export const NO_BODY_TEXT = "null";

interface ForwardFields {
  method: string;
  url: string;
  bodyText: string;
  renter: string;
  at: string;
  nonce: string;
}

const forwardFields = (p: ForwardFields) => [p.method.toUpperCase(), p.url, sha256(p.bodyText), p.renter, p.at, p.nonce];

/** The bytes the master signs: a domain tag, the call (body by hash), who it is for, when, and a nonce. */
export function forwardMessage(p: ForwardFields): string {
  return envelopeMessage(FORWARD_TAG, forwardFields(p));
}

/**
 * The headers that carry a forwarded call's proof of origin, made with the master's node key, or with
 * the session key it holds with the member (`session`: an HMAC, named by its id).
 */
export function signForward(call: ForwardCall, masterNodeId: string, key: Authenticator, now: Date, session?: { id: string; key: Authenticator }): Record<string, string> {
  const at = String(now.getTime());
  const nonce = randomBytes(16).toString("hex");
  const renter = call.renter ?? "";
  return {
    [FORWARD_HEADERS.by]: masterNodeId,
    [FORWARD_HEADERS.renter]: renter,
    [FORWARD_HEADERS.at]: at,
    [FORWARD_HEADERS.nonce]: nonce,
    ...(session ? { [FORWARD_HEADERS.key]: session.id } : {}),
    [FORWARD_HEADERS.sig]: sealEnvelope(session?.key ?? key, FORWARD_TAG, forwardFields({ ...call, renter, at, nonce })),
  };
}

const one = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h);

/** Why a forwarded call is refused, after "check authority failed: forwarded call refused: ". */
const REFUSALS: Record<EnvelopeRefusal, string> = {
  skew: "stale or future timestamp",
  malformed: "bad nonce",
  replayed: "replayed",
  proof: "bad signature",
};

/**
 * A member's check of forwarded calls: signed by the master it joined (master_node_id), fresh, and
 * never seen before. Seen nonces are kept for twice the time window, then dropped.
 */
export class ForwardVerifier {
  private readonly checker = new EnvelopeChecker(FORWARD_MAX_SKEW_MS, new WindowedNonces(2 * FORWARD_MAX_SKEW_MS));

  constructor(
    private readonly masterNodeId: () => string | undefined,
    private readonly now: () => Date = () => new Date(),
    /** The key the master's signed calls are checked with: its node key. */
    private readonly keyOf: (nodeId: string) => Authenticator = (nodeId) => nodeKeyAuthenticator(nodeId),
    /** The session key held with the master: its calls with a MAC are checked with it. */
    private readonly sessions?: SessionKeys,
  ) {}

  /** Whether a request claims to be forwarded at all. */
  static isForwarded(headers: IncomingHttpHeaders): boolean {
    return headers[FORWARD_HEADERS.sig] !== undefined;
  }

  /** The renter id the master vouches for (null: none). Throws DbcError -3 when the proof does not hold. */
  verify(headers: IncomingHttpHeaders, method: string, url: string, bodyText: string): string | null {
    const deny = (why: string) => new DbcError(-3, `check authority failed: forwarded call refused: ${why}`);
    const master = this.masterNodeId();
    const by = one(headers[FORWARD_HEADERS.by]);
    const renter = one(headers[FORWARD_HEADERS.renter]) ?? "";
    const at = one(headers[FORWARD_HEADERS.at]) ?? "";
    const nonce = one(headers[FORWARD_HEADERS.nonce]) ?? "";
    const sig = one(headers[FORWARD_HEADERS.sig]) ?? "";
    const keyId = one(headers[FORWARD_HEADERS.key]);
    if (!master) throw deny("this host has no master");
    if (by !== master) throw deny("not from this host's master");
    const key = keyId === undefined ? this.keyOf(master) : this.sessions?.get(master, keyId);
    if (!key) throw new DbcError(-3, `check authority failed: forwarded call refused: ${UNKNOWN_SESSION} ${keyId}`, UNKNOWN_FORWARD_KEY_STATUS);
    const envelope = {
      tag: FORWARD_TAG,
      fields: forwardFields({ method, url, bodyText, renter, at, nonce }),
      at: /^\d+$/.test(at) ? Number(at) : NaN,
      replayKey: /^[0-9a-f]{32}$/.test(nonce) ? nonce : null,
      proof: sig,
    };
    const refused = this.checker.check(envelope, key, this.now());
    if (refused) throw deny(REFUSALS[refused]);
    return renter === "" ? null : renter;
  }
}

/** The DBC error for a member that cannot answer now, naming it. */
export function unreachable(nodeId: string, why: string): DbcError {
  return new DbcError(-32701, `create node request failed: node ${nodeId} is unreachable: ${why}`);
}

/**
 * Where a member is called: its TLS port on its recorded IP, to the certificate pinned for it. A member
 * that named none (yet) is not called at all: DbcError -32701.
 */
export function peerTls(peer: GroupPeer): { address: string; tls: { sha256: string } } {
  if (!peer.tls) throw unreachable(peer.nodeId, "no TLS certificate is pinned for it yet (its join or signed heartbeats name it)");
  return { address: joinAddress(splitAddress(peer.address).host, peer.tls.port), tls: { sha256: peer.tls.sha256 } };
}

/** Runs an HTTP call to a member, turning a failure to get an answer into DbcError -32701 naming it. */
async function toMember<T>(peer: GroupPeer, send: Promise<T>): Promise<T> {
  try {
    return await send;
  } catch (e) {
    if (e instanceof HttpTransportError) throw unreachable(peer.nodeId, e.message);
    throw e;
  }
}

/**
 * Sends a call to a member over TLS to its pinned certificate and returns its reply as is. A fresh
 * connection unless `agent` pools them (MemberConnections: alive members only); a new connection must
 * be made (and its certificate checked) within the connect bound, the whole reply within
 * `replyTimeoutMs`. Throws DbcError -32701.
 */
export async function sendToPeer(
  peer: GroupPeer,
  call: ForwardCall,
  headers: Record<string, string>,
  replyTimeoutMs: number,
  agent: Agent | false = false,
): Promise<ForwardReply> {
  const res = await toMember(
    peer,
    sendHttp({
      ...peerTls(peer),
      method: call.method,
      path: call.url,
      headers: { ...headers, "content-type": "application/json" },
      body: call.bodyText,
      agent,
      connectTimeoutMs: FORWARD_CONNECT_TIMEOUT_MS,
      replyTimeoutMs,
    }),
  );
  return { status: res.status, contentType: res.headers["content-type"] ?? "application/json; charset=utf-8", body: res.body };
}

/**
 * Opens a long-lived call to a member (an event stream) and resolves with its response as it starts;
 * only the connection and the response's head are bounded. Throws DbcError -32701.
 */
export function streamFromPeer(peer: GroupPeer, call: ForwardCall, headers: Record<string, string>): Promise<IncomingMessage> {
  return toMember(
    peer,
    openHttp({ ...peerTls(peer), method: call.method, path: call.url, headers, connectTimeoutMs: FORWARD_CONNECT_TIMEOUT_MS }),
  );
}

export interface GroupRouterOptions {
  nodeId: string;
  /** This agent's key, which signs the calls it forwards (its sr25519 node key). */
  key: Authenticator;
  peer: (nodeId: string) => GroupPeer | undefined;
  masterNodeId: () => string | undefined;
  now?: () => Date;
  /** Session keys with the group's other side: a master MACs its calls to a member it holds one with; a member checks them. */
  sessions?: SessionKeys;
}

/** How a forwarded call ended: the member's reply (whatever its status), or none (`unreachable`: DbcError -32701). */
export interface ForwardOutcome {
  nodeId: string;
  outcome: "replied" | "unreachable";
  seconds: number;
}

/** Routing between agents: the master forwards renter calls; a member accepts them from its master only. */
export class GroupRouter {
  private readonly verifier: ForwardVerifier;
  private readonly now: () => Date;
  private readonly connections = new MemberConnections(FORWARD_CONNECT_TIMEOUT_MS);
  private readonly forwardListeners = new Set<(o: ForwardOutcome) => void>();

  constructor(private readonly opts: GroupRouterOptions) {
    this.now = opts.now ?? (() => new Date());
    this.verifier = new ForwardVerifier(opts.masterNodeId, this.now, undefined, opts.sessions);
  }

  peer(nodeId: string): GroupPeer | undefined {
    return nodeId === this.opts.nodeId ? undefined : this.opts.peer(nodeId);
  }

  /** Forwards a call to a member; a dead one fails at once, a suspect one within the connect bound. */
  async forward(peer: GroupPeer, call: ForwardCall): Promise<ForwardReply> {
    if (peer.state === "dead") {
      this.connections.forget(peer.nodeId);
      throw unreachable(peer.nodeId, `its agent is dead (last seen ${peer.lastSeen})`);
    }
    const session = this.opts.sessions?.current(peer.nodeId);
    const headers = signForward(call, this.opts.nodeId, this.opts.key, this.now(), session);
    const replyTimeoutMs = peer.state === "suspect" ? FORWARD_CONNECT_TIMEOUT_MS : FORWARD_REPLY_TIMEOUT_MS;
    const started = performance.now();
    const told = (outcome: ForwardOutcome["outcome"]) => {
      const o = { nodeId: peer.nodeId, outcome, seconds: (performance.now() - started) / 1000 };
      for (const l of this.forwardListeners) l(o);
    };
    try {
      let reply = await sendToPeer(peer, call, headers, replyTimeoutMs, this.connections.agentFor(peer));
      if (session && reply.status === UNKNOWN_FORWARD_KEY_STATUS) {
        // The member lost the key (it restarted; its next heartbeat agrees a new one): signed this once.
        reply = await sendToPeer(peer, call, signForward(call, this.opts.nodeId, this.opts.key, this.now()), replyTimeoutMs, this.connections.agentFor(peer));
      }
      told("replied");
      return reply;
    } catch (e) {
      told("unreachable");
      throw e;
    }
  }

  /** Calls `listener` as each forwarded call ends (a dead member's, refused at once, is no call). Returns the unsubscribe. */
  onForward(listener: (o: ForwardOutcome) => void): () => void {
    this.forwardListeners.add(listener);
    return () => this.forwardListeners.delete(listener);
  }

  /** Opens an event stream on a member for a renter the master authenticated; a dead member fails at once. */
  async stream(peer: GroupPeer, call: ForwardCall): Promise<IncomingMessage> {
    if (peer.state === "dead") throw unreachable(peer.nodeId, `its agent is dead (last seen ${peer.lastSeen})`);
    return streamFromPeer(peer, call, signForward(call, this.opts.nodeId, this.opts.key, this.now()));
  }

  /** Closes the kept connections to members (the agent is stopping). */
  close(): void {
    this.connections.close();
  }

  verifyForwarded(headers: IncomingHttpHeaders, method: string, url: string, bodyText: string): string | null | undefined {
    if (!ForwardVerifier.isForwarded(headers)) return undefined;
    return this.verifier.verify(headers, method, url, bodyText);
  }
}
