import type { Stats } from "node:fs";
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { ImageMeta } from "../vm/images.js";
import { DEFAULT_PIECE_BYTES, PieceHasher, readHandleInto, type FileDigest, type PieceManifest } from "./digest.js";
import { ImageTransferError } from "./errors.js";
import { assertBootFileName, assertImageName, blobDir, imagePaths, isImageName, sidecarName } from "./names.js";

/** One image of a folder, as a listing shows it. */
export interface ImageEntry {
  name: string;
  sizeBytes: number;
  sha256: string;
  mtimeMs: number;
}

/** The digest cache `.<name>.digest.json`: valid while the file keeps its size, mtime and inode. */
interface DigestRecord extends FileDigest {
  ino: number;
  mtimeMs: number;
}

const isMissing = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === "ENOENT";

function matches(rec: DigestRecord, st: Stats, pieceBytes: number): boolean {
  return rec.ino === st.ino && rec.mtimeMs === st.mtimeMs && rec.sizeBytes === st.size && rec.pieceBytes === pieceBytes;
}

async function readRecord(cachePath: string): Promise<DigestRecord | null> {
  try {
    return JSON.parse(await readFile(cachePath, "utf8")) as DigestRecord;
  } catch {
    return null; // missing or torn: rehash
  }
}

/** Writes a digest cache for the file as `st` describes it (atomic: temp + rename). */
export async function writeDigestRecord(cachePath: string, digest: FileDigest, st: Stats): Promise<void> {
  const rec: DigestRecord = { ...digest, ino: st.ino, mtimeMs: st.mtimeMs };
  const tmp = `${cachePath}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(rec));
  await rename(tmp, cachePath);
}

/**
 * The digest of the file at `path`, from the cache beside it when the file is unchanged, else by
 * one read pass (cached afterwards). Hashes through one open descriptor and caches only when the
 * file did not change meanwhile, so a file being written is never cached under a stale hash.
 */
export async function cachedDigest(path: string, cachePath: string, pieceBytes: number): Promise<FileDigest & { stat: Stats }> {
  const handle = await open(path, "r");
  try {
    const before = await handle.stat();
    const rec = await readRecord(cachePath);
    if (rec && matches(rec, before, pieceBytes)) {
      return { sizeBytes: rec.sizeBytes, sha256: rec.sha256, pieceBytes: rec.pieceBytes, pieces: rec.pieces, stat: before };
    }
    const hasher = new PieceHasher(pieceBytes);
    await readHandleInto(handle, (b) => hasher.update(b));
    const digest = hasher.digest();
    const after = await handle.stat();
    if (after.mtimeMs === before.mtimeMs && after.size === before.size && digest.sizeBytes === before.size) {
      await writeDigestRecord(cachePath, digest, before);
    }
    return { ...digest, stat: before };
  } finally {
    await handle.close();
  }
}

/**
 * The images of one folder (a node's image cache or an image server's store): `<name>.qcow2`, an
 * optional sidecar `<name>.json` (src/vm/images.ts ImageMeta) and the kernel/initrd it names.
 * Hidden files (`.x`: digests, parts, blobs) and `*.part` are never images.
 *
 * Stored once by content: `dedupe(name)` hard-links `<dir>/<name>` with `<dir>/.blobs/<sha256>`,
 * so two names of the same bytes share one inode and take the space once. A blob whose link count
 * falls to 1 belongs to no name any more; `pruneBlobs()` removes it.
 */
export class ImageLibrary {
  /** One hash at a time per file: two listings racing do not read a 20 GiB file twice. */
  private readonly hashing = new Map<string, Promise<FileDigest & { stat: Stats }>>();
  private readonly memo = new Map<string, FileDigest & { stat: Stats }>();
  readonly pieceBytes: number;

  constructor(
    readonly dir: string,
    opts: { pieceBytes?: number } = {},
  ) {
    this.pieceBytes = opts.pieceBytes ?? DEFAULT_PIECE_BYTES;
  }

  /** The image's path; refuses names that are not image names (`../x`, `a/b`, `.hidden`). */
  path(name: string): string {
    return join(this.dir, assertImageName(name));
  }

  /** Every image of the folder, by name, each hashed at most once while unchanged. */
  async list(): Promise<ImageEntry[]> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter(isImageName).sort();
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
    const out: ImageEntry[] = [];
    // One after another: hashing images in parallel only makes the disk seek.
    for (const name of names) {
      const entry = await this.entry(name).catch((e: unknown) => {
        if (isMissing(e)) return null; // removed meanwhile
        throw e;
      });
      if (entry) out.push(entry);
    }
    return out;
  }

  /** One image's entry, or null when it is not there (or not a regular file). */
  async entry(name: string): Promise<ImageEntry | null> {
    const path = this.path(name);
    try {
      if (!(await stat(path)).isFile()) return null;
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
    const d = await this.digest(name);
    return { name, sizeBytes: d.sizeBytes, sha256: d.sha256, mtimeMs: d.stat.mtimeMs };
  }

  /**
   * The image's digest (cached); ENOENT when absent. Kept in memory too while the file is
   * unchanged: a peer asks for a 20 GiB image's pieces 5000 times, and reading and parsing its
   * 330 KB digest file each time cost more than serving the piece on a loaded 2-core host.
   */
  async digest(name: string): Promise<FileDigest & { stat: Stats }> {
    const paths = imagePaths(this.dir, name);
    const st = await stat(paths.image);
    const known = this.memo.get(name);
    if (known && known.stat.ino === st.ino && known.stat.mtimeMs === st.mtimeMs && known.sizeBytes === st.size && known.pieceBytes === this.pieceBytes) return known;
    const running = this.hashing.get(name);
    if (running) return running;
    const p = cachedDigest(paths.image, paths.digest, this.pieceBytes)
      .then((d) => {
        this.memo.set(name, d);
        return d;
      })
      .finally(() => this.hashing.delete(name));
    this.hashing.set(name, p);
    return p;
  }

  /** The piece manifest; not_found when the image is absent. */
  async manifest(name: string): Promise<PieceManifest> {
    try {
      const { stat: _s, ...d } = await this.digest(name);
      return { name, ...d };
    } catch (e) {
      if (isMissing(e)) throw new ImageTransferError("not_found", `no such image: ${name}`);
      throw e;
    }
  }

  /** Records a digest the caller computed (a finished download or upload), so no one rehashes. */
  async remember(name: string, digest: FileDigest): Promise<void> {
    const paths = imagePaths(this.dir, name);
    await writeDigestRecord(paths.digest, digest, await stat(paths.image));
  }

  /** The sidecar, or null when the image has none. A sidecar that is not ImageMeta is refused. */
  async meta(name: string): Promise<ImageMeta | null> {
    const path = imagePaths(this.dir, name).sidecar;
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
    return parseMeta(name, text);
  }

  /** The kernel and initrd the sidecar names (names relative to the folder). */
  async bootFiles(name: string): Promise<string[]> {
    return bootFilesOf(await this.meta(name));
  }

  /** Every file of the image that exists: the image, its sidecar, its boot files (names relative to the folder). */
  async files(name: string): Promise<string[]> {
    const candidates = [assertImageName(name), sidecarName(name), ...(await this.bootFiles(name))];
    const out: string[] = [];
    for (const f of candidates) {
      try {
        if ((await stat(join(this.dir, f))).isFile()) out.push(f);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    }
    return out;
  }

  /**
   * Makes `<name>` and `.blobs/<sha256>` one inode. The first name of some content becomes its
   * blob; a later name with the same content is replaced (by rename, atomically) with a link to
   * the blob, and its own copy's space is freed once nothing holds it open. Call after an image
   * arrives. Returns whether the name now shares an earlier copy.
   */
  async dedupe(name: string): Promise<{ sha256: string; shared: boolean }> {
    const paths = imagePaths(this.dir, name);
    const d = await this.digest(name);
    const blobs = blobDir(this.dir);
    await mkdir(blobs, { recursive: true });
    const blob = join(blobs, d.sha256);
    for (let attempt = 0; attempt < 3; attempt++) {
      let bst: Stats;
      try {
        bst = await stat(blob);
      } catch (e) {
        if (!isMissing(e)) throw e;
        try {
          await link(paths.image, blob);
          return { sha256: d.sha256, shared: false };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EEXIST") continue; // another name won the race
          throw err;
        }
      }
      if (bst.ino === d.stat.ino && bst.dev === d.stat.dev) return { sha256: d.sha256, shared: bst.nlink > 2 };
      // Another copy holds the content's place: trust it only once it is checked to hold those bytes.
      const blobDigest = await cachedDigest(blob, join(blobs, `.${d.sha256}.digest.json`), this.pieceBytes);
      if (blobDigest.sha256 !== d.sha256) {
        await unlink(blob); // a damaged blob: the new copy takes its place
        continue;
      }
      const tmp = join(this.dir, `.${name}.dedupe.${process.pid}.tmp`);
      await rm(tmp, { force: true });
      await link(blob, tmp);
      await rename(tmp, paths.image);
      await writeDigestRecord(paths.digest, { sizeBytes: d.sizeBytes, sha256: d.sha256, pieceBytes: d.pieceBytes, pieces: d.pieces }, blobDigest.stat);
      return { sha256: d.sha256, shared: true };
    }
    throw new ImageTransferError("busy", `image ${name}: its content blob kept changing`);
  }

  /** Removes blobs no image name links any more (link count 1). Returns the hashes removed. */
  async pruneBlobs(): Promise<string[]> {
    const blobs = blobDir(this.dir);
    let names: string[];
    try {
      names = await readdir(blobs);
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
    const removed: string[] = [];
    for (const n of names) {
      if (n.startsWith(".")) continue;
      const st = await stat(join(blobs, n)).catch(() => null);
      if (st?.isFile() && st.nlink === 1) {
        await rm(join(blobs, n), { force: true });
        await rm(join(blobs, `.${n}.digest.json`), { force: true });
        removed.push(n);
      }
    }
    return removed;
  }
}

/** A sidecar's text → ImageMeta, refusing what is not one and boot file names that leave the folder. */
export function parseMeta(name: string, text: string): ImageMeta {
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    throw new ImageTransferError("bad_request", `image ${name}: its metadata file is not JSON`);
  }
  if (!Value.Check(ImageMeta, meta)) throw new ImageTransferError("bad_request", `image ${name}: its metadata file is not image metadata`);
  bootFilesOf(meta);
  return meta;
}

/** The kernel and initrd a sidecar names, each checked to be a plain file of the same folder. */
export function bootFilesOf(meta: ImageMeta | null): string[] {
  if (!meta) return [];
  const out: string[] = [];
  for (const f of [meta.kernel, meta.initrd]) if (f !== undefined && f !== "") out.push(assertBootFileName(f));
  return out;
}
