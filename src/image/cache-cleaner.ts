/**
 * Keeps a node's image cache from filling its disk: when the free space falls under the operator's
 * floor, images that no task boots from, that no snapshot needs, that are not a renter's own (its
 * snapshots are its data, never the cache's) and that were not pulled for `keepDays` go, oldest
 * first, until the floor is met again. An image is "pulled" when it arrived (its file's mtime: a
 * download or an import writes the file; a VM only reads it).
 */
import { readdirSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { IMAGE_NAME_RE } from "../vm/images.js";
import { imageOwner, sidecarName } from "./names.js";

export interface CacheCleanerOptions {
  cache: string;
  /** Free bytes on the cache's file system now. */
  freeBytes: () => Promise<number>;
  /** The floor: a sweep removes images only while free space is under it. */
  minFreeBytes: number;
  /** An image pulled more recently than this is kept. */
  keepDays: number;
  /** What keeps an image: a task booting from it, a snapshot on it; undefined when nothing does. */
  inUse: (name: string) => string | undefined;
  /** Whether a transfer of `name` runs now. */
  transferring: (name: string) => boolean;
  now?: () => Date;
}

/** Removes what the policy allows; answers the names removed, oldest first. */
export async function sweepImageCache(opts: CacheCleanerOptions): Promise<string[]> {
  let free = await opts.freeBytes();
  if (free >= opts.minFreeBytes) return [];
  const cutoff = (opts.now?.() ?? new Date()).getTime() - opts.keepDays * 86_400_000;
  const candidates = readdirSync(opts.cache)
    .filter((f) => IMAGE_NAME_RE.test(f) && f.endsWith(".qcow2"))
    .map((name) => ({ name, st: statSync(join(opts.cache, name)) }))
    .filter(({ name, st }) => st.mtimeMs < cutoff && imageOwner(opts.cache, name) === null && !opts.inUse(name) && !opts.transferring(name))
    .sort((a, b) => a.st.mtimeMs - b.st.mtimeMs);
  const removed: string[] = [];
  for (const { name, st } of candidates) {
    if (free >= opts.minFreeBytes) break;
    await rm(join(opts.cache, name), { force: true });
    await rm(join(opts.cache, sidecarName(name)), { force: true });
    await rm(join(opts.cache, `.${name}.digest.json`), { force: true });
    removed.push(name);
    // A hard-linked image (its content shared with another name) frees nothing yet: read the disk again.
    free = st.nlink > 1 ? await opts.freeBytes() : free + st.size;
  }
  return removed;
}
