import { access } from "node:fs/promises";
import { resolve } from "node:path";
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { exec } from "../lib/index.js";

/** Disk image formats batu creates and converts to. */
export const DiskFormats = ["qcow2", "raw"] as const;
export type DiskFormat = (typeof DiskFormats)[number];

/** Per-operation timeouts of qemu-img calls (each takes 7–26 ms on a small image; convert copies data). */
export const QemuImgTimeoutsMs = {
  info: 30_000,
  create: 60_000,
  resize: 60_000,
  snapshot: 120_000,
  convert: 60 * 60_000,
} as const;

/** Options every call takes: an override of its timeout and an abort signal. */
export interface QemuImgCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

const QEMU_IMG = "qemu-img";

/** The part of `qemu-img info --output=json` batu reads. Other fields are allowed and ignored. */
const InfoSchema = Type.Object({
  format: Type.String(),
  "virtual-size": Type.Integer({ minimum: 0 }),
  "actual-size": Type.Optional(Type.Integer({ minimum: 0 })),
  "backing-filename": Type.Optional(Type.String()),
  "full-backing-filename": Type.Optional(Type.String()),
  "backing-filename-format": Type.Optional(Type.String()),
  "dirty-flag": Type.Optional(Type.Boolean()),
  snapshots: Type.Optional(
    Type.Array(
      Type.Object({
        id: Type.String(),
        name: Type.String(),
        "vm-state-size": Type.Integer({ minimum: 0 }),
        "date-sec": Type.Integer(),
        "date-nsec": Type.Integer(),
        "vm-clock-sec": Type.Integer(),
        "vm-clock-nsec": Type.Integer(),
      }),
    ),
  ),
});
type RawInfo = Static<typeof InfoSchema>;

/** What batu knows about one image file. */
export interface ImageInfo {
  /** Format qemu-img detected, e.g. `qcow2`, `raw`. */
  format: string;
  /** Size the guest sees. */
  virtualSizeBytes: number;
  /** Space the file takes on the host (0 when qemu-img cannot tell). */
  actualSizeBytes: number;
  /** Absolute path of the backing file (relative names resolved by qemu-img), or null. */
  backingFile: string | null;
  /** Format of the backing file as recorded in the image, or null. */
  backingFormat: string | null;
}

/** One internal qcow2 snapshot. */
export interface ImageSnapshot {
  id: string;
  name: string;
  /** Saved RAM state (0 for disk-only snapshots taken by qemu-img). */
  vmStateSizeBytes: number;
  createdAt: Date;
}

/** qemu-img answered, but not with what the schema expects. */
export class QemuImgOutputError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly output: string,
    readonly problems: string[],
  ) {
    super(`qemu-img ${args[0] ?? ""} printed unexpected output: ${problems.slice(0, 3).join("; ")}`);
    this.name = "QemuImgOutputError";
  }
}

/** A create/convert target already exists: qemu-img would silently overwrite it. */
export class ImageExistsError extends Error {
  constructor(readonly path: string) {
    super(`image already exists: ${path}`);
    this.name = "ImageExistsError";
  }
}

/** Snapshot names: argv-safe and portable. */
export const SNAPSHOT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

async function run(args: string[], timeoutMs: number, opts: QemuImgCallOptions & { onStdout?: (chunk: string) => void }): Promise<string> {
  const { stdout } = await exec(QEMU_IMG, args, {
    timeoutMs: opts.timeoutMs ?? timeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onStdout ? { onStdout: opts.onStdout } : {}),
  });
  return stdout;
}

async function runInfo(path: string, shared: boolean, opts: QemuImgCallOptions): Promise<RawInfo> {
  const args = ["info", "--output=json", ...(shared ? ["-U"] : []), resolve(path)];
  const stdout = await run(args, QemuImgTimeoutsMs.info, opts);
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch (e) {
    throw new QemuImgOutputError(args, stdout, [`not JSON: ${(e as Error).message}`]);
  }
  if (!Value.Check(InfoSchema, json)) {
    const problems = [...Value.Errors(InfoSchema, json)].map((err) => `${err.path || "/"}: ${err.message}`);
    throw new QemuImgOutputError(args, stdout, problems);
  }
  return json;
}

/**
 * Reads an image's format, sizes and backing file (`qemu-img info --output=json`).
 * `shared` adds `-U`, needed to read an image a running VM holds locked.
 */
export async function imageInfo(path: string, opts: QemuImgCallOptions & { shared?: boolean } = {}): Promise<ImageInfo> {
  const raw = await runInfo(path, opts.shared ?? false, opts);
  return {
    format: raw.format,
    virtualSizeBytes: raw["virtual-size"],
    actualSizeBytes: raw["actual-size"] ?? 0,
    backingFile: raw["full-backing-filename"] ?? raw["backing-filename"] ?? null,
    backingFormat: raw["backing-filename-format"] ?? null,
  };
}

async function assertAbsent(path: string): Promise<void> {
  try {
    await access(path);
  } catch {
    return;
  }
  throw new ImageExistsError(path);
}

function checkSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
    throw new RangeError(`disk size must be a positive whole number of bytes, got ${sizeBytes}`);
  }
}

/**
 * Creates a linked clone: a qcow2 overlay whose backing file is `basePath` (absolute, with its
 * detected format). Nothing of the base is copied. `sizeBytes` may enlarge the overlay beyond the base.
 * Refuses to overwrite an existing overlay. Returns the overlay's info.
 */
/**
 * The bare `qemu-img create -b` of an overlay whose base's format and size the caller knows: one
 * process, no reads of either image (what a snapshot, timed against a hand-made convert, needs).
 */
export async function createOverlayOf(
  base: { path: string; format: string },
  overlayPath: string,
  sizeBytes: number,
  opts: QemuImgCallOptions = {},
): Promise<void> {
  checkSize(sizeBytes);
  const overlay = resolve(overlayPath);
  await assertAbsent(overlay);
  await run(["create", "-q", "-f", "qcow2", "-b", resolve(base.path), "-F", base.format, overlay, String(sizeBytes)], QemuImgTimeoutsMs.create, opts);
}

export async function createOverlay(
  basePath: string,
  overlayPath: string,
  opts: QemuImgCallOptions & { sizeBytes?: number } = {},
): Promise<ImageInfo> {
  const base = resolve(basePath);
  const overlay = resolve(overlayPath);
  if (opts.sizeBytes !== undefined) checkSize(opts.sizeBytes);
  await assertAbsent(overlay);
  // -U: base images are shared read-only by running VMs, whose locks would refuse a plain open.
  const baseInfo = await imageInfo(base, { ...opts, shared: true });
  const args = ["create", "-q", "-f", "qcow2", "-b", base, "-F", baseInfo.format, overlay];
  if (opts.sizeBytes !== undefined) args.push(String(opts.sizeBytes));
  await run(args, QemuImgTimeoutsMs.create, opts);
  return imageInfo(overlay, opts);
}

/** Creates an empty disk of `sizeBytes` (qcow2 by default, thin). Refuses to overwrite. */
export async function createDisk(
  path: string,
  sizeBytes: number,
  format: DiskFormat = "qcow2",
  opts: QemuImgCallOptions = {},
): Promise<ImageInfo> {
  checkSize(sizeBytes);
  const target = resolve(path);
  await assertAbsent(target);
  await run(["create", "-q", "-f", format, target, String(sizeBytes)], QemuImgTimeoutsMs.create, opts);
  return imageInfo(target, opts);
}

/**
 * Sets the virtual size of a disk to `sizeBytes` (absolute, not "grow by" as DBC's API does).
 * Shrinking loses data and needs `shrink: true`. The VM must be stopped (use QMP `block_resize` otherwise).
 */
export async function resizeDisk(
  path: string,
  sizeBytes: number,
  opts: QemuImgCallOptions & { shrink?: boolean; format?: string } = {},
): Promise<void> {
  checkSize(sizeBytes);
  const args = ["resize", "-q", ...(opts.format ? ["-f", opts.format] : []), ...(opts.shrink ? ["--shrink"] : [])];
  args.push(resolve(path), String(sizeBytes));
  await run(args, QemuImgTimeoutsMs.resize, opts);
}

function checkSnapshotName(name: string): void {
  if (!SNAPSHOT_NAME_RE.test(name)) {
    throw new RangeError(`invalid snapshot name ${JSON.stringify(name)} (letters, digits, _ . : -; at most 128)`);
  }
}

async function snapshotOp(flag: "-c" | "-a" | "-d", path: string, name: string, opts: QemuImgCallOptions): Promise<void> {
  checkSnapshotName(name);
  await run(["snapshot", "-q", flag, name, resolve(path)], QemuImgTimeoutsMs.snapshot, opts);
}

/** Takes an internal qcow2 snapshot of a stopped VM's disk. */
export function snapshotCreate(path: string, name: string, opts: QemuImgCallOptions = {}): Promise<void> {
  return snapshotOp("-c", path, name, opts);
}

/** Reverts a stopped VM's disk to a snapshot. */
export function snapshotApply(path: string, name: string, opts: QemuImgCallOptions = {}): Promise<void> {
  return snapshotOp("-a", path, name, opts);
}

/** Deletes a snapshot of a stopped VM's disk. */
export function snapshotDelete(path: string, name: string, opts: QemuImgCallOptions = {}): Promise<void> {
  return snapshotOp("-d", path, name, opts);
}

/** Lists internal snapshots (read from `info --output=json`, since `snapshot -l` has no JSON output). */
export async function snapshotList(path: string, opts: QemuImgCallOptions & { shared?: boolean } = {}): Promise<ImageSnapshot[]> {
  const raw = await runInfo(path, opts.shared ?? false, opts);
  return (raw.snapshots ?? []).map((s) => ({
    id: s.id,
    name: s.name,
    vmStateSizeBytes: s["vm-state-size"],
    createdAt: new Date(s["date-sec"] * 1000 + Math.floor(s["date-nsec"] / 1e6)),
  }));
}

/**
 * Copies `src` into a new image `dst` of `format` (flattening its backing chain unless
 * `backingFile` is given, in which case only the difference to it is written: DBC's snapshot export).
 * Refuses to overwrite `dst`.
 */
export async function convert(
  src: string,
  dst: string,
  format: DiskFormat,
  opts: QemuImgCallOptions & {
    sourceFormat?: string;
    backingFile?: string;
    backingFormat?: string;
    /** Told the fraction copied (0…1) as qemu-img reports it (`-p`). */
    onProgress?: (fraction: number) => void;
  } = {},
): Promise<ImageInfo> {
  const target = resolve(dst);
  await assertAbsent(target);
  const { onProgress } = opts;
  const args = ["convert", onProgress ? "-p" : "-q", ...(opts.sourceFormat ? ["-f", opts.sourceFormat] : []), "-O", format];
  if (opts.backingFile !== undefined) {
    const backing = resolve(opts.backingFile);
    const backingFormat = opts.backingFormat ?? (await imageInfo(backing, { ...opts, shared: true })).format;
    args.push("-B", backing, "-F", backingFormat);
  }
  args.push(resolve(src), target);
  // `-p` prints "    (42.00/100%)" lines ended by a carriage return.
  const onStdout = onProgress && ((chunk: string) => {
    const last = [...chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)].at(-1);
    if (last) onProgress(Math.min(1, Number(last[1]) / 100));
  });
  await run(args, QemuImgTimeoutsMs.convert, { ...opts, ...(onStdout ? { onStdout } : {}) });
  return imageInfo(target, opts);
}
