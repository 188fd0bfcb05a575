import { readFile, rename, stat, writeFile } from "node:fs/promises";
import type { PieceManifest } from "./digest.js";
import { imagePaths } from "./names.js";

/**
 * The state of a download in progress, `.<name>.part.json` beside `.<name>.part`: the manifest it
 * follows and the pieces already written and verified. Written (atomically) after each piece's
 * bytes are in the part file, so what it claims is there; a resumed download and a peer serving
 * pieces both trust it, and the whole-file sha256 at the end catches what a power cut could undo.
 */
export interface PartState {
  manifest: PieceManifest;
  /** Indices of the verified pieces. */
  done: number[];
}

export async function readPartState(path: string): Promise<PartState | null> {
  try {
    const s = JSON.parse(await readFile(path, "utf8")) as PartState;
    if (!s || typeof s !== "object" || !s.manifest || !Array.isArray(s.done) || !Array.isArray(s.manifest.pieces)) return null;
    return s;
  } catch {
    return null;
  }
}

export async function writePartState(path: string, state: PartState): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify(state));
  await rename(tmp, path);
}

/** What a node holds of an image it is downloading into `destDir`. */
export interface HeldPieces {
  manifest: PieceManifest;
  done: ReadonlySet<number>;
  /** The part file the pieces are in. */
  partPath: string;
}

// A peer asks for pieces one by one; parsing a 20 GiB image's state (~330 KB) each time would cost
// ~1 ms per piece, so the parse is kept while the state file is unchanged.
const cache = new Map<string, { mtimeMs: number; size: number; held: HeldPieces }>();

/** The verified pieces of a download in progress, or null when there is none. */
export async function heldPieces(destDir: string, name: string): Promise<HeldPieces | null> {
  const paths = imagePaths(destDir, name);
  const st = await stat(paths.partState).catch(() => null);
  if (!st) {
    cache.delete(paths.partState);
    return null;
  }
  const hit = cache.get(paths.partState);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.held;
  const s = await readPartState(paths.partState);
  if (!s) return null;
  const held: HeldPieces = { manifest: s.manifest, done: new Set(s.done), partPath: paths.part };
  cache.set(paths.partState, { mtimeMs: st.mtimeMs, size: st.size, held });
  return held;
}
