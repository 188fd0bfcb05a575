import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IMAGE_NAME_RE } from "../vm/images.js";
import { ImageTransferError } from "./errors.js";

/**
 * The file names of the image cache. Every name that reaches a path comes through here, so a
 * request or a remote sidecar can never name a file outside the folder (`../x`, `a/b`) or one of
 * the folder's own hidden files (`.blobs`, `.x.part`).
 */

/** An image: `<name>.qcow2` under IMAGE_NAME_RE (a leading letter or digit: never hidden, never `..`). */
export function isImageName(name: string): boolean {
  return IMAGE_NAME_RE.test(name) && name.endsWith(".qcow2") && name.length > ".qcow2".length;
}

export function assertImageName(name: string): string {
  if (!isImageName(name)) throw new ImageTransferError("bad_name", `image name is invalid: ${JSON.stringify(name)} (a file name ending in .qcow2)`);
  return name;
}

/** A kernel or initrd a sidecar names: a plain visible file of the same folder, never a part file. */
export function isBootFileName(file: string): boolean {
  return IMAGE_NAME_RE.test(file) && !file.endsWith(".part") && !file.endsWith(".json");
}

export function assertBootFileName(file: string): string {
  if (!isBootFileName(file)) throw new ImageTransferError("bad_name", `boot file name is invalid: ${JSON.stringify(file)}`);
  return file;
}

/** `<name>.json` beside `<name>.qcow2`. */
export const sidecarName = (name: string): string => name.replace(/\.qcow2$/, ".json");

/** Paths of one image's files and hidden companions in a folder. */
export function imagePaths(dir: string, name: string) {
  assertImageName(name);
  return {
    image: join(dir, name),
    sidecar: join(dir, sidecarName(name)),
    /** The digest cache (library.ts). */
    digest: join(dir, `.${name}.digest.json`),
    /** A download in progress (download.ts) and its state. */
    part: join(dir, `.${name}.part`),
    partState: join(dir, `.${name}.part.json`),
    /** An upload in progress (upload.ts) and the hash it promised. */
    upload: join(dir, `.${name}.upload.part`),
    uploadState: join(dir, `.${name}.upload.json`),
  };
}

/** The folder of content-addressed blobs: `<dir>/.blobs/<sha256>`. */
export const blobDir = (dir: string): string => join(dir, ".blobs");

export const SHA256_RE = /^[0-9a-f]{64}$/;

/**
 * The renter whose own image `name` in `dir` is (its sidecar's `owner`: a snapshot), or null for
 * the operator's image (no sidecar, or none naming an owner).
 */
export function imageOwner(dir: string, name: string): string | null {
  try {
    const owner = (JSON.parse(readFileSync(join(dir, sidecarName(name)), "utf8")) as { owner?: unknown }).owner;
    return typeof owner === "string" ? owner : null;
  } catch {
    return null;
  }
}
