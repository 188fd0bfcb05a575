/**
 * The one HTTP client of batu agents, over node:http: the CLI's calls to its agent, a member's
 * heartbeats and joins, and the master's signed calls to its members all go through `sendHttp` or
 * `openHttp`. Each call has two bounds, each with its own error text: the TCP connection must open
 * within `connectTimeoutMs` ("no connection within N ms"), then the socket may stay silent at most
 * `replyTimeoutMs` ("no reply within N ms"). A caller may pass its own keep-alive pool (`agent`).
 * Calls between agents go over TLS to a pinned certificate (`tls`: pinned-tls.ts); the CLI's calls
 * to its own agent stay on loopback HTTP.
 */
import { request, type Agent, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { request as tlsRequest } from "node:https";
import { baseUrl, normalizeAddress } from "./address.js";
import { PinnedTlsAgent } from "./pinned-tls.js";

/** A non-2xx reply of a batu agent, with the reason it gave. */
export class HostApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = "HostApiError";
  }
}

/** The agent could not be reached at all (refused, timed out, DNS). */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach ${url}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = "UnreachableError";
  }
}

/** A call that got no (complete) reply; the message says why, as callers pass it on. */
export class HttpTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HttpTransportError";
  }
}

/** One HTTP call to an agent. */
export interface HttpCall {
  /** `ip:port`, `[v6]:port`, or a bare IP (port 10000). */
  address: string;
  method: string;
  /** Path and query. */
  path: string;
  headers?: Record<string, string>;
  /** Sent as is; none for a call without a body. */
  body?: string;
  /**
   * A keep-alive pool; `false` for a fresh connection; default: node's global agent. With `tls`, a
   * PinnedTlsAgent of the same pin, or a fresh connection.
   */
  agent?: Agent | false;
  /** Over TLS, to a peer that must present this certificate (SHA-256, hex); `address` names its TLS port. */
  tls?: { sha256: string } | undefined;
  connectTimeoutMs: number;
}

/** A whole reply. */
export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function startRequest(call: HttpCall) {
  // `ip:port` or `[v6]:port` (a zone id included): the port follows the last colon.
  const address = normalizeAddress(call.address);
  const colon = address.lastIndexOf(":");
  const headers: Record<string, string | number> = { ...call.headers };
  if (call.body !== undefined) headers["content-length"] = Buffer.byteLength(call.body);
  const options = {
    host: address.slice(0, colon).replace(/^\[|\]$/g, ""),
    port: Number(address.slice(colon + 1)),
    method: call.method,
    path: call.path,
    headers,
  };
  if (!call.tls) return request({ ...options, ...(call.agent !== undefined ? { agent: call.agent } : {}) });
  const pool = call.agent instanceof PinnedTlsAgent ? call.agent : undefined;
  if (pool && pool.sha256 !== call.tls.sha256) throw new Error("a pool of another pin: a wiring bug");
  // A fresh agent without keep-alive: one connection, closed after the reply; its handshake within the connect bound.
  return tlsRequest({ ...options, agent: pool ?? new PinnedTlsAgent(call.tls.sha256, {}, call.connectTimeoutMs) });
}

/**
 * Sends a call and reads its whole reply. A new connection must open within `connectTimeoutMs` (a
 * kept one is open already); the socket may then be silent at most `replyTimeoutMs`. Rejects with
 * HttpTransportError: `no connection within N ms`, `no reply within N ms`, or the socket's error.
 */
export function sendHttp(call: HttpCall & { replyTimeoutMs: number }): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = startRequest(call);
    const fail = (why: string) => {
      clearTimeout(connectTimer);
      req.destroy();
      reject(new HttpTransportError(why));
    };
    const connectTimer = setTimeout(() => fail(`no connection within ${call.connectTimeoutMs} ms`), call.connectTimeoutMs);
    req.setTimeout(call.replyTimeoutMs, () => fail(`no reply within ${call.replyTimeoutMs} ms`));
    // A kept socket is connected already: no 'connect' will come.
    req.once("socket", (s) => (s.connecting ? s.once("connect", () => clearTimeout(connectTimer)) : clearTimeout(connectTimer)));
    req.once("error", (e) => fail(e.message));
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("error", (e) => fail(e.message));
      res.once("end", () => {
        clearTimeout(connectTimer);
        resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.end(call.body);
  });
}

/**
 * Opens a long-lived call (an event stream) on a fresh connection and resolves with its response as
 * it starts; only the connection and the response's head are bounded, together, by `connectTimeoutMs`
 * (`no answer within N ms`). Rejects with HttpTransportError.
 */
export function openHttp(call: Omit<HttpCall, "agent">): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = startRequest({ ...call, agent: false });
    const fail = (why: string) => {
      clearTimeout(timer);
      req.destroy();
      reject(new HttpTransportError(why));
    };
    const timer = setTimeout(() => fail(`no answer within ${call.connectTimeoutMs} ms`), call.connectTimeoutMs);
    req.once("error", (e) => fail(e.message));
    req.once("response", (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.end(call.body);
  });
}

export interface RequestOptions {
  method?: "GET" | "POST";
  token?: string | undefined;
  body?: unknown;
  /** Over TLS to this pinned certificate (`address` then names the TLS port). */
  tls?: { sha256: string } | undefined;
  /** Bounds the connection and then the reply, each. */
  timeoutMs?: number;
  /** With `tls`: a keep-alive pool of that pin (a member's heartbeats to its master); default a fresh connection. */
  agent?: PinnedTlsAgent | undefined;
}

/**
 * One JSON request to an agent (`address` as HostClient takes it); resolves with the parsed 2xx body,
 * rejects with HostApiError or UnreachableError.
 */
export async function requestJson<T>(address: string, path: string, opts: RequestOptions = {}): Promise<T> {
  return (await requestJsonReply<T>(address, path, opts)).body;
}

/** As requestJson, with the reply's headers too (a page's `x-batu-next`). */
export async function requestJsonReply<T>(address: string, path: string, opts: RequestOptions = {}): Promise<{ body: T; headers: IncomingHttpHeaders }> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let res: HttpReply;
  try {
    res = await sendHttp({
      address,
      method: opts.method ?? (opts.body === undefined ? "GET" : "POST"),
      path,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      tls: opts.tls,
      ...(opts.agent ? { agent: opts.agent } : {}),
      connectTimeoutMs: timeoutMs,
      replyTimeoutMs: timeoutMs,
    });
  } catch (e) {
    throw new UnreachableError(baseUrl(address, opts.tls ? "https" : "http") + path, e);
  }
  const text = res.body.toString("utf8");
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // A non-JSON reply is reported through its status below.
  }
  if (res.status < 200 || res.status > 299) {
    const message = (parsed as { message?: unknown } | undefined)?.message;
    throw new HostApiError(res.status, typeof message === "string" ? message : `HTTP ${res.status}`, parsed);
  }
  return { body: parsed as T, headers: res.headers };
}
