import { createWriteStream } from "node:fs";
import { link, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { digestFile, PieceHasher, type FileDigest } from "./digest.js";
import { ImageTransferError } from "./errors.js";
import type { ImageEntry, ImageLibrary } from "./library.js";
import { assertImageName, imagePaths, SHA256_RE } from "./names.js";

/** What an upload in progress holds: its bytes so far and the hash it promised. */
export interface UploadHeld {
  heldBytes: number;
  sha256: string;
  totalBytes: number | null;
}

export type UploadResult = { done: true; created: boolean; entry: ImageEntry } | { done: false; heldBytes: number };

interface UploadRecord {
  sha256: string;
  totalBytes: number | null;
}

/**
 * Receives image uploads into a library's folder: the body streamed to `.<name>.upload.part`
 * (never buffered), resumable from the bytes held, the promised sha256 checked before the image
 * appears, and an existing image never overwritten (its name is taken with link(2), which fails
 * when the name exists, rather than rename(2), which would replace it).
 */
export class UploadReceiver {
  private readonly busy = new Set<string>();

  constructor(readonly library: ImageLibrary) {}

  /** The upload in progress under `name`, or null. */
  async held(name: string): Promise<UploadHeld | null> {
    const paths = imagePaths(this.library.dir, name);
    const rec = await readRecord(paths.uploadState);
    if (!rec) return null;
    const st = await stat(paths.upload).catch(() => null);
    return { heldBytes: st?.size ?? 0, sha256: rec.sha256, totalBytes: rec.totalBytes };
  }

  /**
   * Writes `body` into the upload of `name`: from byte 0 (a fresh upload, replacing any held
   * part), or from `range.from`, which must be the bytes held by an upload of the same sha256.
   * Completes when the bytes reach the total (the range's, or the end of a body without range).
   */
  async receive(name: string, body: Readable, opts: { sha256: string; range?: { from: number; to: number; totalBytes: number } | null }): Promise<UploadResult> {
    assertImageName(name);
    const sha256 = opts.sha256.toLowerCase();
    if (!SHA256_RE.test(sha256)) throw new ImageTransferError("bad_request", "x-image-sha256: must be 64 hex digits");
    if (this.busy.has(name)) throw new ImageTransferError("busy", `an upload of ${name} is already running`);
    this.busy.add(name);
    try {
      return await this.receiveLocked(name, body, sha256, opts.range ?? null);
    } finally {
      this.busy.delete(name);
    }
  }

  private async receiveLocked(name: string, body: Readable, sha256: string, range: { from: number; to: number; totalBytes: number } | null): Promise<UploadResult> {
    const paths = imagePaths(this.library.dir, name);
    const existing = await this.library.entry(name);
    if (existing) {
      if (existing.sha256 === sha256) return { done: true, created: false, entry: existing };
      throw new ImageTransferError("conflict", `image ${name} exists with other content; it is never overwritten`);
    }
    const from = range?.from ?? 0;
    const totalBytes = range?.totalBytes ?? null;
    if (from > 0) {
      const held = await this.held(name);
      if (!held) throw new ImageTransferError("range_not_satisfiable", `no upload of ${name} is held; start from byte 0`);
      if (held.sha256 !== sha256) throw new ImageTransferError("conflict", `the upload of ${name} held here is of other content; start from byte 0`);
      if (held.heldBytes !== from) throw new ImageTransferError("range_not_satisfiable", `the upload of ${name} holds ${held.heldBytes} bytes; resume from there`);
    } else {
      await writeRecord(paths.uploadState, { sha256, totalBytes });
    }
    // Hashed while written when the whole file passes through this request; a resumed one is
    // hashed from disk at the end.
    const hasher = from === 0 ? new PieceHasher(this.library.pieceBytes) : null;
    if (hasher) body.on("data", (b: Buffer) => hasher.update(b));
    const out = createWriteStream(paths.upload, { flags: from === 0 ? "w" : "r+", start: from, highWaterMark: 1024 * 1024 });
    let cut = false;
    try {
      await pipeline(body, out);
    } catch {
      cut = true; // the client went away: what arrived stays, to be resumed
    }
    const heldBytes = (await stat(paths.upload)).size;
    const complete = !cut && (totalBytes === null ? true : heldBytes === totalBytes);
    if (!complete) return { done: false, heldBytes };
    const digest: FileDigest = hasher ? hasher.digest() : await digestFile(paths.upload, { pieceBytes: this.library.pieceBytes });
    if (digest.sha256 !== sha256) {
      await rm(paths.upload, { force: true });
      await rm(paths.uploadState, { force: true });
      throw new ImageTransferError("hash_mismatch", `upload of ${name}: its sha256 is ${digest.sha256}, not the ${sha256} promised; it was discarded`);
    }
    try {
      await link(paths.upload, paths.image);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const now = await this.library.entry(name);
      if (now?.sha256 !== sha256) throw new ImageTransferError("conflict", `image ${name} appeared meanwhile with other content; it is never overwritten`);
    }
    await unlink(paths.upload);
    await rm(paths.uploadState, { force: true });
    await this.library.remember(name, digest);
    await this.library.dedupe(name);
    const entry = await this.library.entry(name);
    if (!entry) throw new ImageTransferError("not_found", `image ${name} vanished after its upload`);
    return { done: true, created: true, entry };
  }
}

async function readRecord(path: string): Promise<UploadRecord | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as UploadRecord;
  } catch {
    return null;
  }
}

async function writeRecord(path: string, rec: UploadRecord): Promise<void> {
  await writeFile(path, JSON.stringify(rec));
}
