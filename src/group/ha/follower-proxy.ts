/**
 * What a master that does not lead does with a call: reads of the group's state it answers from its
 * copy (current to the last etcd change it applied); anything that writes it passes to the leader
 * over TLS, pinned on the group's own certificate, and streams the leader's answer back. A renter
 * call (`POST /api/v1/...`) is decided once its body is read (server/routes/v1/follower.ts): one the
 * master only routes to a member it answers itself, the others it passes on with the body it read.
 * The member protocol (join, heartbeat, session) needs the member's own source address, so a
 * follower refuses it with `not_leader`, naming the leader: members use the group's service address,
 * which only the leader holds.
 */
import { request } from "node:https";
import type { IncomingHttpHeaders } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import { PinnedTlsAgent } from "../../sdk/pinned-tls.js";
import { ApiError } from "../../api/errors.js";

/** Where the leader serves: its own address and TLS port. */
export interface LeaderEndpoint {
  host: string;
  tlsPort: number;
}

const MEMBER_PROTOCOL = /^\/master\/group\/(join|heartbeat|session)(\?|$)/;
/** Hop-by-hop headers (RFC 9110 §7.6.1): each connection's own. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host"]);

const RENTER_API = /^\/api\/v1(\/|\?|$)/;

/**
 * Whether a follower passes `req` to the leader as it arrives, rather than answering it. A renter
 * call's POST is not decided here: it is answered or passed on (`relayRead`) once its body is read.
 */
export function goesToLeader(method: string, url: string): boolean {
  if (RENTER_API.test(url)) return method !== "POST";
  return method !== "GET" && method !== "HEAD";
}

export class FollowerProxy {
  private agent: PinnedTlsAgent;

  constructor(
    /** The group's TLS certificate (every master presents it). */
    private readonly certSha256: string,
    private readonly leader: () => LeaderEndpoint | undefined,
  ) {
    this.agent = new PinnedTlsAgent(certSha256, { keepAlive: true, maxSockets: 64 });
  }

  /**
   * The election names another leader: the connections to the last one are dropped, and the calls
   * still waiting on them fail now with not_leader (a retry reaches the new leader). A leader whose
   * host died answers nothing, not even a reset, so they would otherwise wait out the 60 s.
   */
  leaderChanged(): void {
    this.agent.destroy();
    this.agent = new PinnedTlsAgent(this.certSha256, { keepAlive: true, maxSockets: 64 });
  }

  /** A Fastify onRequest hook's body: true when the call was sent on (the reply is the leader's). */
  async handle(req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    if (!goesToLeader(req.method, req.url)) return false;
    await this.relay(req, reply);
    return true;
  }

  /** Passes on a call whose body this master read already (`bodyText`, as received); the reply is the leader's. */
  relayRead(req: FastifyRequest, reply: FastifyReply, bodyText: string): Promise<void> {
    return this.relay(req, reply, bodyText);
  }

  /** Sends the call to the leader (its body as it streams in, or `bodyText` when read) and streams the answer back. */
  private async relay(req: FastifyRequest, reply: FastifyReply, bodyText?: string): Promise<void> {
    const leader = this.leader();
    if (MEMBER_PROTOCOL.test(req.url) || !leader) {
      throw new ApiError("not_leader", leader ? `this master does not lead its group; its leader is at ${leader.host}` : undefined);
    }
    const headers = forwardHeaders(req.headers, req.ip);
    if (bodyText !== undefined) headers["content-length"] = String(Buffer.byteLength(bodyText));
    await new Promise<void>((resolve, reject) => {
      const upstream = request(
        { host: leader.host, port: leader.tlsPort, method: req.method, path: req.url, headers, agent: this.agent, timeout: 60_000 },
        (res) => {
          reply.hijack();
          reply.raw.writeHead(res.statusCode ?? 502, forwardHeaders(res.headers));
          res.pipe(reply.raw);
          res.on("end", resolve);
          res.on("error", resolve);
        },
      );
      upstream.on("timeout", () => upstream.destroy(new Error("the leader did not answer within 60 s")));
      upstream.on("error", (e) => reject(new ApiError("not_leader", `the group's leader at ${leader.host} could not be reached: ${e.message}`)));
      if (bodyText === undefined) req.raw.pipe(upstream);
      else upstream.end(bodyText);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function forwardHeaders(headers: IncomingHttpHeaders, forwardedFor?: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value as string | string[];
  if (forwardedFor) out["x-forwarded-for"] = forwardedFor;
  return out;
}
