import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { sha256File, type PieceManifest } from "./digest.js";
import { ImageTransferError } from "./errors.js";
import { assertImageName } from "./names.js";

/**
 * The client side of an image server's HTTP interface (server-routes.ts), over node:http with
 * keep-alive pools: a download holds several pieces in flight to each source, and a new TCP
 * connection per 4 MiB piece would cost a round trip and a slow start each time.
 */

/** A source answered in a way that says nothing about the image (network error, 5xx, bad body). */
export class SourceError extends Error {
  constructor(
    readonly source: string,
    message: string,
    readonly status?: number,
  ) {
    super(`${source}: ${message}`);
    this.name = "SourceError";
  }
}

/** The source does not hold what was asked (404 or 416): ask another. */
export class NotHeldError extends SourceError {
  constructor(source: string, what: string, status: number) {
    super(source, `does not hold ${what} (${status})`, status);
    this.name = "NotHeldError";
  }
}

export interface ImageListing {
  name: string;
  size_bytes: number;
  sha256: string;
}

export interface HttpCallOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  signal?: AbortSignal | undefined;
  /** The socket may stay silent this long; default 30 s. */
  idleTimeoutMs?: number;
}

/** Keep-alive pools, one per protocol, sized for `maxSockets` in flight per source. */
export function keepAliveAgents(maxSockets = 8): { http: HttpAgent; https: HttpsAgent } {
  return { http: new HttpAgent({ keepAlive: true, maxSockets }), https: new HttpsAgent({ keepAlive: true, maxSockets }) };
}

const sharedAgents = keepAliveAgents(16);

/** Headers that sign one request (method, path and query) as this node: request-signature.ts. */
export type RequestSigner = (method: string, pathAndQuery: string) => Record<string, string>;

/** One image server (or peer) at `baseUrl` (e.g. `http://10.0.0.2:10000/image-server/v1`). */
export class ImageHttpSource {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly agents = sharedAgents,
    /** Signs each request as this node (a renter's image or an upload needs it); none: unsigned. */
    private readonly sign?: RequestSigner,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  /** Sends a request; resolves with the response once its headers are in (the body still to read). */
  open(path: string, opts: HttpCallOptions = {}, body?: NodeJS.ReadableStream): Promise<IncomingMessage> {
    const method = opts.method ?? "GET";
    const { url, headers: signature } = this.signed(path, method);
    const tls = url.protocol === "https:";
    const headers = { ...opts.headers, ...signature };
    return new Promise((resolve, reject) => {
      const req = (tls ? httpsRequest : httpRequest)(
        url,
        { method, headers, agent: tls ? this.agents.https : this.agents.http, signal: opts.signal },
        resolve,
      );
      req.setTimeout(opts.idleTimeoutMs ?? 30_000, () => req.destroy(new Error(`no data within ${opts.idleTimeoutMs ?? 30_000} ms`)));
      req.on("error", (e) => reject(opts.signal?.aborted ? abortError(opts.signal) : new SourceError(this.baseUrl, e.message)));
      if (body) body.pipe(req);
      else req.end();
    });
  }

  /** The URL of `path` at this source, and the headers that sign a `method` request of it as this node. */
  signed(path: string, method = "GET"): { url: URL; headers: Record<string, string> } {
    const url = new URL(this.baseUrl + path);
    return { url, headers: this.sign ? this.sign(method, url.pathname + url.search) : {} };
  }

  /** A JSON reply (bounded), or null on 404. */
  async json<T>(path: string, opts: HttpCallOptions = {}, limitBytes = 64 * 1024 * 1024): Promise<T | null> {
    const res = await this.open(path, opts);
    const text = await readText(res, limitBytes, this.baseUrl);
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) throw new SourceError(this.baseUrl, `${path} answered ${res.statusCode}: ${text.slice(0, 200)}`, res.statusCode);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new SourceError(this.baseUrl, `${path} answered with a body that is not JSON`);
    }
  }

  list(signal?: AbortSignal): Promise<ImageListing[]> {
    return this.json<ImageListing[]>("/images", { signal }).then((l) => l ?? []);
  }

  /** The manifest, or null when the source does not hold the image. */
  async manifest(name: string, signal?: AbortSignal): Promise<PieceManifest | null> {
    const m = await this.json<PieceManifest>(`/images/${encodeURIComponent(assertImageName(name))}/manifest`, { signal });
    if (m && !validManifest(m, name)) throw new SourceError(this.baseUrl, `the manifest of ${name} is malformed`);
    return m;
  }

  /** The sidecar's text, or null (404: none, or not held by this source). */
  async metaText(name: string, signal?: AbortSignal): Promise<string | null> {
    const res = await this.open(`/images/${encodeURIComponent(assertImageName(name))}/meta`, { signal });
    const text = await readText(res, 1024 * 1024, this.baseUrl);
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) throw new SourceError(this.baseUrl, `meta of ${name} answered ${res.statusCode}`, res.statusCode);
    return text;
  }

  /** Streams a boot file the sidecar names to `path`; returns its sha256. */
  async fetchFile(name: string, file: string, path: string, signal?: AbortSignal): Promise<{ sha256: string; sizeBytes: number }> {
    const res = await this.open(`/images/${encodeURIComponent(name)}/files/${encodeURIComponent(file)}`, { signal });
    if (res.statusCode === 404) {
      res.resume();
      throw new NotHeldError(this.baseUrl, `${name}/${file}`, 404);
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new SourceError(this.baseUrl, `${name}/${file} answered ${res.statusCode}`, res.statusCode);
    }
    const h = createHash("sha256");
    let sizeBytes = 0;
    res.on("data", (b: Buffer) => {
      h.update(b);
      sizeBytes += b.length;
    });
    try {
      await pipeline(res, createWriteStream(path));
    } catch (e) {
      throw signal?.aborted ? abortError(signal) : new SourceError(this.baseUrl, `${name}/${file}: ${(e as Error).message}`);
    }
    const length = Number(res.headers["content-length"] ?? sizeBytes);
    if (length !== sizeBytes) throw new SourceError(this.baseUrl, `${name}/${file}: got ${sizeBytes} of ${length} bytes`);
    return { sha256: h.digest("hex"), sizeBytes };
  }
}

/**
 * Uploads a local file to an image server, resuming from what the server holds of an earlier
 * try of the same content. Resolves when the server has verified and kept it.
 */
export async function uploadImage(opts: {
  url: string;
  name: string;
  path: string;
  sha256?: string;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
  signal?: AbortSignal;
  agents?: { http: HttpAgent; https: HttpsAgent };
  sign?: RequestSigner;
}): Promise<{ sha256: string; sizeBytes: number; created: boolean }> {
  const src = new ImageHttpSource(opts.url, opts.agents, opts.sign);
  const name = assertImageName(opts.name);
  const sha256 = opts.sha256 ?? (await sha256File(opts.path, opts.signal));
  const sizeBytes = (await stat(opts.path)).size;
  const held = await src.json<{ held_bytes: number; sha256: string }>(`/uploads/${encodeURIComponent(name)}`, { signal: opts.signal });
  // Resume only an upload of the same bytes that is not whole yet; anything else starts over.
  const from = held && held.sha256 === sha256 && held.held_bytes < sizeBytes ? held.held_bytes : 0;
  const headers: OutgoingHttpHeaders = { "content-type": "application/octet-stream", "x-image-sha256": sha256, "content-length": sizeBytes - from };
  if (sizeBytes > 0) headers["content-range"] = `bytes ${from}-${sizeBytes - 1}/${sizeBytes}`;
  const body = createReadStream(opts.path, { start: from, highWaterMark: 1024 * 1024 });
  let sent = from;
  body.on("data", (b) => {
    sent += b.length;
    opts.onProgress?.({ bytesDone: sent, bytesTotal: sizeBytes });
  });
  const res = await src.open(`/images/${encodeURIComponent(name)}`, { method: "PUT", headers, signal: opts.signal }, body);
  const text = await readText(res, 1024 * 1024, src.baseUrl);
  if (res.statusCode === 200 || res.statusCode === 201) return { sha256, sizeBytes, created: res.statusCode === 201 };
  const message = (() => {
    try {
      return (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {
      return text;
    }
  })();
  if (res.statusCode === 409) throw new ImageTransferError("conflict", `upload of ${name}: ${message}`);
  if (res.statusCode === 400) throw new ImageTransferError("bad_request", `upload of ${name}: ${message}`);
  throw new SourceError(src.baseUrl, `upload of ${name} answered ${res.statusCode}: ${message.slice(0, 200)}`, res.statusCode);
}

function validManifest(m: PieceManifest, name: string): boolean {
  return (
    m.name === name &&
    Number.isSafeInteger(m.sizeBytes) &&
    m.sizeBytes >= 0 &&
    Number.isSafeInteger(m.pieceBytes) &&
    m.pieceBytes > 0 &&
    /^[0-9a-f]{64}$/.test(m.sha256) &&
    Array.isArray(m.pieces) &&
    m.pieces.length === Math.ceil(m.sizeBytes / m.pieceBytes) &&
    m.pieces.every((p) => typeof p === "string" && /^[0-9a-f]{64}$/.test(p))
  );
}

export function abortError(signal: AbortSignal): ImageTransferError {
  const reason = signal.reason as Error | undefined;
  return new ImageTransferError("aborted", `transfer stopped${reason?.message ? `: ${reason.message}` : ""}`);
}

async function readText(res: IncomingMessage, limitBytes: number, source: string): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limitBytes) {
      res.destroy();
      throw new SourceError(source, `reply larger than ${limitBytes} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
