import { Worker } from "node:worker_threads";

// Plain CommonJS run with `eval`, so the worker loads the same under tsx, vitest and the built dist.
// It only moves bytes: which piece from which source, retries and verdicts stay on the caller's side.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const crypto = require("node:crypto");
const fd = fs.openSync(workerData.path, "r+");
const agents = {
  "http:": new http.Agent({ keepAlive: true, maxSockets: workerData.maxSockets }),
  "https:": new https.Agent({ keepAlive: true, maxSockets: workerData.maxSockets }),
};
const inFlight = new Map();

function writeAllSync(buf, position) {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off, position + off);
}

// One request for a run of pieces back to back: each piece hashed on its own, its hash posted
// as soon as its last byte is written.
function fetchPieces(job) {
  let settled = false;
  const finish = (outcome) => {
    if (settled) return;
    settled = true;
    inFlight.delete(job.id);
    parentPort.postMessage({ id: job.id, ...outcome });
  };
  const failed = (kind, message, status) => finish({ ok: false, kind, message, status });
  const total = job.lengths.reduce((a, b) => a + b, 0);
  const url = new URL(job.url);
  const req = (url.protocol === "https:" ? https : http).request(url, { headers: job.headers, agent: agents[url.protocol] }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      return failed(res.statusCode === 404 || res.statusCode === 416 ? "not_held" : "status", "answered " + res.statusCode, res.statusCode);
    }
    let piece = 0;
    let inPiece = 0;
    let hash = crypto.createHash("sha256");
    let got = 0;
    res.on("data", (chunk) => {
      if (settled) return;
      if (got + chunk.length > total) {
        req.destroy();
        return failed("length", "more than its " + total + " bytes");
      }
      try {
        writeAllSync(chunk, job.position + got);
      } catch (e) {
        req.destroy();
        return failed("write", String((e && e.message) || e));
      }
      got += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        const take = Math.min(chunk.length - off, job.lengths[piece] - inPiece);
        hash.update(off === 0 && take === chunk.length ? chunk : chunk.subarray(off, off + take));
        off += take;
        inPiece += take;
        if (inPiece === job.lengths[piece]) {
          parentPort.postMessage({ id: job.id, piece, sha256: hash.digest("hex") });
          piece += 1;
          inPiece = 0;
          hash = crypto.createHash("sha256");
        }
      }
    });
    res.on("end", () => (got === total ? finish({ ok: true }) : failed("length", "got " + got + " of " + total + " bytes")));
    res.on("aborted", () => failed("network", "connection cut"));
    res.on("error", (e) => failed("network", e.message));
  });
  req.setTimeout(job.idleTimeoutMs, () => req.destroy(new Error("no data within " + job.idleTimeoutMs + " ms")));
  req.on("error", (e) => failed("network", e.message));
  inFlight.set(job.id, req);
  req.end();
}

parentPort.on("message", (m) => {
  if (m.cancel !== undefined) return inFlight.get(m.cancel)?.destroy(new Error("cancelled"));
  fetchPieces(m);
});
`;

export interface PieceJob {
  /** Full URL of the pieces. */
  url: string;
  /** Request headers (a node's signature among them). */
  headers: Record<string, string>;
  /** Where the first piece goes in the part file; the others follow it. */
  position: number;
  /** Each piece's exact length: more or fewer bytes in all fail the request. */
  lengths: number[];
  /** The socket may stay silent this long. */
  idleTimeoutMs: number;
}

export type PieceOutcome =
  | { ok: true }
  | {
      ok: false;
      /** not_held: 404/416; status: another non-200; length: too many/few bytes; network: the connection failed; write: the part file did. */
      kind: "not_held" | "status" | "length" | "network" | "write";
      message: string;
      status?: number;
    };

/**
 * The data path of a download, on a thread of its own: it fetches runs of pieces over keep-alive
 * HTTP, hashes each buffer as it arrives and writes it into the part file at once, synchronously, from
 * the thread that received it. Why a thread: a write per buffer handed to libuv's pool costs a
 * thread hop per 64 KiB and a copy from a cold cache; measured on a 1 GiB loopback download, the
 * pool's writes took 3.0 s of CPU where synchronous ones took 1.6 s, and throughput doubled. Done
 * on the agent's own event loop, a synchronous write stalls the API, QMP and heartbeats whenever
 * the kernel throttles dirty pages: here only this thread waits.
 */
export class PieceWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { onPiece: (k: number, sha256: string) => void; done: (o: PieceOutcome) => void }>();
  private nextId = 1;
  private dead: Error | null = null;

  constructor(partPath: string, maxSockets: number) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path: partPath, maxSockets } });
    this.worker.on("message", (m: { id: number; piece?: number; sha256?: string } & PieceOutcome) => {
      const p = this.pending.get(m.id);
      if (m.piece !== undefined) return p?.onPiece(m.piece, m.sha256!);
      this.pending.delete(m.id);
      const { id: _, ...outcome } = m;
      p?.done(outcome as PieceOutcome);
    });
    const die = (e: Error) => {
      this.dead ??= e;
      for (const p of this.pending.values()) p.done({ ok: false, kind: "write", message: `piece worker: ${e.message}` });
      this.pending.clear();
    };
    this.worker.on("error", die);
    this.worker.on("exit", (code) => die(new Error(`exited with ${code}`)));
  }

  /**
   * Fetches a run of pieces into the part file; `onPiece(k, sha256)` as the k-th is written. A
   * signal's abort cancels the request (outcome `network`).
   */
  fetch(job: PieceJob, onPiece: (k: number, sha256: string) => void, signal?: AbortSignal): Promise<PieceOutcome> {
    if (this.dead) return Promise.resolve({ ok: false, kind: "write", message: `piece worker: ${this.dead.message}` });
    const id = this.nextId++;
    return new Promise((resolve) => {
      const cancel = () => this.worker.postMessage({ cancel: id });
      signal?.addEventListener("abort", cancel, { once: true });
      this.pending.set(id, {
        onPiece,
        done: (o) => {
          signal?.removeEventListener("abort", cancel);
          resolve(o);
        },
      });
      this.worker.postMessage({ id, ...job });
      if (signal?.aborted) cancel();
    });
  }

  /** Ends the thread; pieces still in flight end as `network` failures. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
