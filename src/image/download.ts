import { createHash } from "node:crypto";
import { link, mkdir, open, rename, rm, stat, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pieceSpan, PieceHasher, readHandleInto, sha256File, type PieceManifest } from "./digest.js";
import { ImageTransferError } from "./errors.js";
import { bootFilesOf, ImageLibrary, parseMeta } from "./library.js";
import { assertImageName, imagePaths, sidecarName } from "./names.js";
import { readPartState, writePartState } from "./part-state.js";
import { abortError, ImageHttpSource, keepAliveAgents, NotHeldError, SourceError, type RequestSigner } from "./http-source.js";
import { SourcePool, type PoolSource } from "./source-pool.js";
import { BackgroundHasher } from "./background-hash.js";
import { PieceWorker } from "./piece-worker.js";

export { heldPieces } from "./part-state.js";

export interface DownloadProgress {
  bytesDone: number;
  bytesTotal: number;
}

export interface DownloadOptions {
  /** Base URLs of image servers or peers serving server-routes.ts (e.g. `http://10.0.0.2:10000/image-server/v1`). */
  sources: readonly string[];
  name: string;
  destDir: string;
  /** What the caller knows the image to be (from a listing): a source with other content is refused. */
  expected?: { sha256: string; sizeBytes: number };
  onProgress?: (p: DownloadProgress) => void;
  /** Stops the download; the part file and its state stay for a later resume. */
  signal?: AbortSignal;
  /** Requests in flight at once; default 4. */
  concurrency?: number;
  /** Alone (one source), the most consecutive pieces one request takes; default 16. */
  runPieces?: number;
  /** Failed fetches (errors, bad hashes) of one piece before the download fails; default 5. */
  maxPieceFailures?: number;
  /** How long a failing source is set aside (doubling with each failure in a row); default 2 s. */
  setAsideMs?: number;
  /** How long to wait for a piece no source holds yet (peers gain pieces) before failing; default 60 s. */
  lackingTimeoutMs?: number;
  /** Hard-link the arrived image with its content blob (library.ts dedupe); default true. */
  dedupe?: boolean;
  /** Signs each request as this node (request-signature.ts); none: unsigned. */
  sign?: RequestSigner;
}

export interface DownloadResult {
  name: string;
  path: string;
  sizeBytes: number;
  sha256: string;
  /** Bytes fetched by this call (not counting pieces held from an earlier try). */
  bytesFetched: number;
  /** Bytes already held from an earlier, cut try. */
  bytesResumed: number;
  /** Bytes fetched from each source (by base URL). */
  bytesBySource: Record<string, number>;
  /** The image was there already: nothing fetched. */
  alreadyPresent: boolean;
}

/** A piece whose bytes did not hash to the manifest's. */
class BadPieceError extends SourceError {}

const downloading = new Set<string>();

/**
 * Downloads an image into `destDir`, verified: each piece's sha256 as it arrives, the whole file's
 * at the end, from several sources at once (servers or peers holding some pieces). Resumable: the
 * bytes go to `.<name>.part` and the verified pieces to `.<name>.part.json`, so a cut download (a
 * killed process, a dropped connection, an abort) starts again where it stopped. The sidecar and
 * boot files are placed first and the image renamed into place last: its presence marks it whole.
 */
export async function downloadImage(opts: DownloadOptions): Promise<DownloadResult> {
  const name = assertImageName(opts.name);
  if (opts.sources.length === 0) throw new ImageTransferError("bad_request", "download of an image needs at least one source");
  await mkdir(opts.destDir, { recursive: true });
  const key = join(opts.destDir, name);
  if (downloading.has(key)) throw new ImageTransferError("busy", `${name} is being downloaded already`);
  downloading.add(key);
  try {
    return await new Download(opts, name).run();
  } finally {
    downloading.delete(key);
  }
}

class Download {
  private readonly paths: ReturnType<typeof imagePaths>;
  private readonly library: ImageLibrary;
  private readonly agents;
  private readonly sources: ImageHttpSource[];
  private readonly concurrency: number;
  private readonly stop = new AbortController();
  private manifest!: PieceManifest;
  private done = new Set<number>();
  private bytesDone = 0;
  private bytesResumed = 0;
  private bytesFetched = 0;
  private readonly bySource: Record<string, number> = {};
  private stateWrite: Promise<void> = Promise.resolve();
  private stateDirty = false;
  /** The whole-file hash, fed the part file's complete prefix as pieces land. */
  private hasher!: BackgroundHasher;
  private hashedPieces = 0;

  constructor(
    private readonly opts: DownloadOptions,
    private readonly name: string,
  ) {
    this.paths = imagePaths(opts.destDir, name);
    this.library = new ImageLibrary(opts.destDir);
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.agents = keepAliveAgents(this.concurrency);
    this.sources = [...new Set(opts.sources)].map((u) => new ImageHttpSource(u, this.agents, opts.sign));
    opts.signal?.addEventListener("abort", () => this.stop.abort(opts.signal?.reason), { once: true });
    if (opts.signal?.aborted) this.stop.abort(opts.signal.reason);
  }

  private get signal(): AbortSignal {
    return this.stop.signal;
  }

  async run(): Promise<DownloadResult> {
    try {
      const present = await this.present();
      if (present) return present;
      this.manifest = await this.fetchManifest();
      const size = this.manifest.sizeBytes;
      const handle = await this.openPart();
      this.hasher = new BackgroundHasher(this.paths.part);
      try {
        this.advanceHash();
        await this.fetchAll();
        let sha = await this.hasher.finish(size);
        if (sha !== this.manifest.sha256) {
          // A piece the state called done that the disk does not hold (a power cut), or a
          // manifest at odds with itself: recheck every piece, refetch the bad ones once.
          const bad = await this.recheckPieces(handle);
          if (bad.length === 0) {
            await this.discard();
            throw new ImageTransferError("hash_mismatch", `${this.name}: every piece matches the manifest but the whole sha256 is ${sha}, not ${this.manifest.sha256}: the manifest is inconsistent; the part was discarded`);
          }
          this.hashedPieces = Number.MAX_SAFE_INTEGER; // the background hash is spent: the file is read back below
          for (const i of bad) this.done.delete(i);
          this.bytesDone = this.doneBytes();
          await this.saveState();
          await this.fetchAll();
          sha = await this.wholeHash(handle);
          if (sha !== this.manifest.sha256) {
            await this.discard();
            throw new ImageTransferError("hash_mismatch", `${this.name}: the whole sha256 is ${sha}, not ${this.manifest.sha256}; the part was discarded`);
          }
        }
        await handle.datasync();
      } finally {
        await this.hasher.close();
        await handle.close();
      }
      await this.stateWrite;
      await this.fetchSidecarAndBootFiles();
      // Last: the image's name appears only when it is whole and verified.
      await rename(this.paths.part, this.paths.image);
      await this.library.remember(this.name, this.manifestDigest());
      await rm(this.paths.partState, { force: true });
      if (this.opts.dedupe !== false) await this.library.dedupe(this.name);
      return {
        name: this.name,
        path: this.paths.image,
        sizeBytes: size,
        sha256: this.manifest.sha256,
        bytesFetched: this.bytesFetched,
        bytesResumed: this.bytesResumed,
        bytesBySource: this.bySource,
        alreadyPresent: false,
      };
    } catch (e) {
      if (this.signal.aborted) {
        await this.stateWrite.catch(() => undefined);
        throw abortError(this.signal);
      }
      throw e;
    } finally {
      this.agents.http.destroy();
      this.agents.https.destroy();
    }
  }

  /** The image is in place already (complete by construction): answer at once. */
  private async present(): Promise<DownloadResult | null> {
    const entry = await this.library.entry(this.name);
    if (!entry) return null;
    const want = this.opts.expected;
    if (want && want.sha256 !== entry.sha256) {
      throw new ImageTransferError("conflict", `${this.name} is here already with other content (sha256 ${entry.sha256}, not ${want.sha256})`);
    }
    return { name: this.name, path: this.paths.image, sizeBytes: entry.sizeBytes, sha256: entry.sha256, bytesFetched: 0, bytesResumed: 0, bytesBySource: {}, alreadyPresent: true };
  }

  /** The manifest from the first source that has it; the held state's when no source answers. */
  private async fetchManifest(): Promise<PieceManifest> {
    const errors: string[] = [];
    const want = this.opts.expected;
    for (const src of this.sources) {
      try {
        const m = await src.manifest(this.name, this.signal);
        if (!m) {
          errors.push(`${src.baseUrl}: not held`);
          continue;
        }
        if (want && (m.sha256 !== want.sha256 || m.sizeBytes !== want.sizeBytes)) {
          errors.push(`${src.baseUrl}: holds other content (sha256 ${m.sha256})`);
          continue;
        }
        return m;
      } catch (e) {
        if (this.signal.aborted) throw e;
        errors.push((e as Error).message);
      }
    }
    const held = await readPartState(this.paths.partState);
    if (held && held.manifest.name === this.name && (!want || held.manifest.sha256 === want.sha256)) return held.manifest;
    throw new ImageTransferError("not_found", `no source has the manifest of ${this.name}: ${errors.join("; ")}`);
  }

  /** Opens the part file, keeping the pieces an earlier try verified when it followed the same manifest. */
  private async openPart(): Promise<FileHandle> {
    const m = this.manifest;
    const held = await readPartState(this.paths.partState);
    const same = held && held.manifest.sha256 === m.sha256 && held.manifest.pieceBytes === m.pieceBytes && held.manifest.sizeBytes === m.sizeBytes;
    let handle: FileHandle | null = null;
    if (same) {
      handle = await open(this.paths.part, "r+").catch(() => null);
      if (handle) for (const i of held.done) if (Number.isInteger(i) && i >= 0 && i < m.pieces.length) this.done.add(i);
    }
    if (!handle) {
      this.done.clear();
      handle = await open(this.paths.part, "w+");
    }
    await handle.truncate(m.sizeBytes);
    this.bytesDone = this.bytesResumed = this.doneBytes();
    await this.saveState();
    this.progress();
    return handle;
  }

  private doneBytes(): number {
    let n = 0;
    for (const i of this.done) {
      const s = pieceSpan(this.manifest, i);
      n += s.end - s.start;
    }
    return n;
  }

  private progress(): void {
    this.opts.onProgress?.({ bytesDone: this.bytesDone, bytesTotal: this.manifest.sizeBytes });
  }

  /** Writes the state after the bytes it claims; writes that pile up coalesce into one. */
  private saveState(): Promise<void> {
    if (this.stateDirty) return this.stateWrite;
    this.stateDirty = true;
    this.stateWrite = this.stateWrite.then(async () => {
      this.stateDirty = false;
      await writePartState(this.paths.partState, { manifest: this.manifest, done: [...this.done].sort((a, b) => a - b) });
    });
    return this.stateWrite;
  }

  /**
   * Fetches every piece not done, `concurrency` requests at a time; the first fatal error stops
   * them all. Alone (one source: the image server, which holds the whole image), one request takes
   * a run of up to `runPieces` consecutive pieces: a request costs the server an open, a stat and a
   * first read before its first byte (~7 ms measured), which a 4 MiB piece per request paid each
   * time. With peers, a piece per request, in an order of each downloader's own, so that members
   * pulling at once hold different pieces early and fetch them from each other rather than all from
   * the server; the server (the first source) is then asked for a piece only once no peer holds it.
   */
  private async fetchAll(): Promise<void> {
    const missing = this.manifest.pieces.map((_, i) => i).filter((i) => !this.done.has(i));
    if (missing.length === 0) return;
    const swarm = this.sources.length > 1;
    if (swarm) shuffle(missing);
    // Runs short enough that every request slot has one.
    const most = Math.max(1, Math.min(this.opts.runPieces ?? 16, Math.ceil(missing.length / this.concurrency)));
    const queue = swarm ? missing.map((i) => [i]) : consecutiveRuns(missing, most);
    const pool = new SourcePool(
      this.sources.map((s) => ({ key: s.baseUrl, source: s })),
      this.opts.setAsideMs ?? 2000,
      undefined,
      swarm ? this.sources[0]!.baseUrl : undefined,
    );
    const failures = new Map<number, string[]>();
    const pieces = new PieceWorker(this.paths.part, this.concurrency);
    let fatal: unknown = null;
    const worker = async () => {
      for (;;) {
        const run = queue.shift();
        if (run === undefined || fatal) return;
        try {
          await this.fetchWithRetries(pieces, pool, run, failures);
        } catch (e) {
          fatal ??= e;
          if (!this.signal.aborted) this.stop.abort(e);
          return;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));
    } finally {
      await pieces.close();
    }
    await this.stateWrite;
    if (fatal) throw fatal;
  }

  /** Fetches a run of consecutive pieces until each is done, from the sources the pool picks. */
  private async fetchWithRetries(pieces: PieceWorker, pool: SourcePool<ImageHttpSource>, run: number[], failures: Map<number, string[]>): Promise<void> {
    const lackingSince = { at: 0 };
    for (;;) {
      run = run.filter((i) => !this.done.has(i));
      if (run.length === 0) return;
      this.signal.throwIfAborted();
      const first = run[0]!;
      const pick = pool.pick(first);
      if (pick.kind === "wait") {
        await sleep(pick.ms, undefined, { signal: this.signal });
        continue;
      }
      if (pick.kind === "lacking") {
        lackingSince.at ||= Date.now();
        if (Date.now() - lackingSince.at > (this.opts.lackingTimeoutMs ?? 60_000)) {
          throw new ImageTransferError("source_failed", `${this.name}: no source holds piece ${first}: ${(failures.get(first) ?? []).join("; ") || "every source answered 404"}`);
        }
        await sleep(Math.min(1000, this.opts.lackingTimeoutMs ?? 1000), undefined, { signal: this.signal });
        pool.forgetLacks(first);
        continue;
      }
      const entry = pick.entry;
      entry.inFlight += 1;
      const t0 = performance.now();
      const before = this.bytesFetched;
      try {
        await this.fetchRun(pieces, entry, run);
        pool.succeeded(entry, this.bytesFetched - before, performance.now() - t0);
        return;
      } catch (e) {
        if (this.signal.aborted || e instanceof ImageTransferError) throw e;
        if (e instanceof NotHeldError) {
          pool.lacks(entry, first);
          continue;
        }
        pool.failed(entry);
        // The piece the request stopped at is the one charged with the failure.
        const at = run.find((i) => !this.done.has(i)) ?? first;
        const list = failures.get(at) ?? [];
        list.push((e as Error).message);
        failures.set(at, list);
        if (list.length >= (this.opts.maxPieceFailures ?? 5)) {
          throw new ImageTransferError("source_failed", `${this.name}: piece ${at} failed ${list.length} times: ${list.join("; ")}`);
        }
      } finally {
        entry.inFlight -= 1;
      }
    }
  }

  /**
   * A run of consecutive pieces from one source in one request, into the part file at their
   * offsets, on the download's data thread (piece-worker.ts). Each piece is done (verified, counted,
   * in the state) as soon as its last byte is written; a wrong hash stops the request there
   * (BadPieceError). Throws NotHeldError when the source lacks the pieces.
   */
  private async fetchRun(pieces: PieceWorker, entry: PoolSource<ImageHttpSource>, run: number[]): Promise<void> {
    const src = entry.source;
    const m = this.manifest;
    const spans = run.map((i) => pieceSpan(m, i));
    const count = run.length > 1 ? `&count=${run.length}` : "";
    const { url, headers } = src.signed(`/pieces/${encodeURIComponent(this.name)}/${run[0]}?sha256=${m.sha256}&piece_bytes=${m.pieceBytes}${count}`);
    const cut = new AbortController();
    let bad: BadPieceError | null = null;
    const onPiece = (k: number, sha256: string) => {
      const index = run[k]!;
      if (bad) return;
      if (sha256 !== m.pieces[index]) {
        bad = new BadPieceError(src.baseUrl, `piece ${index}: sha256 ${sha256} is not the manifest's ${m.pieces[index]}`);
        cut.abort(bad);
        return;
      }
      const n = spans[k]!.end - spans[k]!.start;
      this.bySource[entry.key] = (this.bySource[entry.key] ?? 0) + n;
      this.bytesFetched += n;
      this.bytesDone += n;
      this.done.add(index);
      this.advanceHash();
      void this.saveState().catch(() => undefined);
      this.progress();
    };
    const lengths = spans.map((sp) => sp.end - sp.start);
    const out = await pieces.fetch({ url: url.href, headers, position: spans[0]!.start, lengths, idleTimeoutMs: 30_000 }, onPiece, AbortSignal.any([this.signal, cut.signal]));
    if (this.signal.aborted) throw abortError(this.signal);
    if (bad) throw bad;
    if (out.ok) return;
    const what = `piece ${run.length > 1 ? `${run[0]}-${run.at(-1)}` : run[0]}`;
    switch (out.kind) {
      case "not_held":
        throw new NotHeldError(src.baseUrl, what, out.status!);
      case "write":
        throw new ImageTransferError("storage_failed", `${this.name}: writing ${what}: ${out.message}`);
      case "length":
        throw new BadPieceError(src.baseUrl, `${what}: ${out.message}`);
      default:
        throw new SourceError(src.baseUrl, `${what}: ${out.message}`, out.status);
    }
  }

  /** Tells the background hash how far the part file is complete from its start. */
  private advanceHash(): void {
    const before = this.hashedPieces;
    while (this.hashedPieces < this.manifest.pieces.length && this.done.has(this.hashedPieces)) this.hashedPieces++;
    if (this.hashedPieces > before) this.hasher.advance(pieceSpan(this.manifest, this.hashedPieces - 1).end);
  }

  /** The whole file's sha256, read back from the part file (the page cache holds what was just written). */
  private async wholeHash(handle: FileHandle): Promise<string> {
    const h = createHash("sha256");
    await readHandleInto(handle, (b) => h.update(b), { toByte: this.manifest.sizeBytes, signal: this.signal });
    return h.digest("hex");
  }

  /** Pieces whose bytes on disk do not hash to the manifest's. */
  private async recheckPieces(handle: FileHandle): Promise<number[]> {
    const hasher = new PieceHasher(this.manifest.pieceBytes);
    await readHandleInto(handle, (b) => hasher.update(b), { toByte: this.manifest.sizeBytes, signal: this.signal });
    const pieces = hasher.digest().pieces;
    return this.manifest.pieces.flatMap((p, i) => (pieces[i] === p ? [] : [i]));
  }

  private manifestDigest() {
    const { sizeBytes, sha256, pieceBytes, pieces } = this.manifest;
    return { sizeBytes, sha256, pieceBytes, pieces };
  }

  private async discard(): Promise<void> {
    await rm(this.paths.part, { force: true });
    await rm(this.paths.partState, { force: true });
  }

  /**
   * The sidecar (from any source that has one: a peer mid-download has none yet, so a 404 is
   * believed only when every source that answers says it, the first one (the server) among them: a
   * peer gone away does not fail the download) and the boot files it names, each placed before the
   * image. A boot file already here with other bytes is never replaced: another image boots it.
   */
  private async fetchSidecarAndBootFiles(): Promise<void> {
    let text: string | null = null;
    let from: ImageHttpSource | null = null;
    const errors: string[] = [];
    let serverSaysNone = false;
    for (const [i, src] of this.sources.entries()) {
      try {
        text = await src.metaText(this.name, this.signal);
        if (text !== null) {
          from = src;
          break;
        }
        if (i === 0) serverSaysNone = true;
      } catch (e) {
        if (this.signal.aborted) throw abortError(this.signal);
        errors.push((e as Error).message);
      }
    }
    if (text === null) {
      if (errors.length > 0 && !serverSaysNone) throw new ImageTransferError("source_failed", `${this.name}: its metadata could not be fetched: ${errors.join("; ")}`);
      return;
    }
    const meta = parseMeta(this.name, text);
    const order = [from!, ...this.sources.filter((s) => s !== from)];
    for (const file of bootFilesOf(meta)) await this.fetchBootFile(order, file);
    const tmp = join(this.opts.destDir, `.${sidecarName(this.name)}.part`);
    await writeFile(tmp, text);
    await rename(tmp, this.paths.sidecar);
  }

  private async fetchBootFile(order: ImageHttpSource[], file: string): Promise<void> {
    const dest = join(this.opts.destDir, file);
    const tmp = join(this.opts.destDir, `.${file}.${process.pid}.part`);
    const errors: string[] = [];
    for (const src of order) {
      try {
        const got = await src.fetchFile(this.name, file, tmp, this.signal);
        const here = await stat(dest).catch(() => null);
        if (here) {
          const sha = await sha256File(dest, this.signal);
          await unlink(tmp);
          if (sha !== got.sha256) throw new ImageTransferError("conflict", `${this.name}: boot file ${file} is here already with other content; it is never replaced`);
          return;
        }
        // link(2), not rename(2): a file of that name that appeared meanwhile is never replaced.
        await link(tmp, dest).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== "EEXIST") throw e;
        });
        await unlink(tmp);
        return;
      } catch (e) {
        await rm(tmp, { force: true });
        if (e instanceof ImageTransferError || this.signal.aborted) throw this.signal.aborted ? abortError(this.signal) : e;
        errors.push((e as Error).message);
      }
    }
    throw new ImageTransferError("source_failed", `${this.name}: boot file ${file} could not be fetched: ${errors.join("; ")}`);
  }
}

/** Ascending indices cut into runs of consecutive ones, each at most `most` long. */
function consecutiveRuns(indices: number[], most: number): number[][] {
  const runs: number[][] = [];
  for (const i of indices) {
    const last = runs.at(-1);
    if (last && last.length < most && last.at(-1) === i - 1) last.push(i);
    else runs.push([i]);
  }
  return runs;
}

/** Fisher-Yates, in place. */
function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
