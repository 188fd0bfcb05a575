import { chmod, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Reverter } from "../lib/index.js";
import { createDisk, createOverlay, imageInfo, type QemuImgCallOptions } from "./qemu-img.js";

/** VM ids usable as folder names: no separators, no dots, so no path traversal. */
export const VM_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Why a volume operation was refused. */
export const VolumeErrorCodes = {
  invalid_vm_id: "invalid_vm_id",
  invalid_data_file_name: "invalid_data_file_name",
  data_file_not_found: "data_file_not_found",
  data_file_has_backing_file: "data_file_has_backing_file",
  data_file_format: "data_file_format",
  vm_dir_exists: "vm_dir_exists",
  system_disk_too_small: "system_disk_too_small",
} as const;
export type VolumeErrorCode = keyof typeof VolumeErrorCodes;

export class VolumeError extends Error {
  constructor(
    readonly code: VolumeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "VolumeError";
  }
}

/** One disk of a VM in host terms. */
export interface VmDisk {
  /** Guest device name: `vda` system disk, `vdb` data disk. */
  id: "vda" | "vdb";
  /** Absolute host path of the image file. */
  path: string;
  /** Image format to give QEMU (never let QEMU probe). */
  format: "qcow2" | "raw";
  /** True for an operator-provided data file: it is not ours to delete. */
  external: boolean;
  /** Size the guest sees, as qemu-img reported it when the disk was made or opened. */
  virtualSizeBytes: number;
}

export interface CreateVmVolumesInput {
  dataDir: string;
  vmId: string;
  /** The cached base image the system disk overlays. */
  baseImagePath: string;
  /** Guest size of vda; default the base image's size. Must not be smaller than the base. */
  systemDiskSizeBytes?: number;
  /** Size of a new empty vdb; ignored when `dataFileName` is given (DBC uses the file instead). */
  dataDiskSizeBytes?: number;
  /** DBC's `data_file_name`: an existing file in `<dataDir>/data-files/` used as vdb as it is. */
  dataFileName?: string;
}

/** A folder under `<dataDir>/vms/`, for reconcile: which disks exist, whether or not a VM does. */
export interface VmDirEntry {
  vmId: string;
  path: string;
  /** File names inside the folder, sorted. */
  files: string[];
}

export const SYSTEM_DISK_FILE = "vda.qcow2";
export const DATA_DISK_FILE = "vdb.qcow2";

/** Throws a VolumeError unless `vmId` is safe as a folder name. */
export function checkVmId(vmId: string): void {
  if (!VM_ID_RE.test(vmId)) {
    throw new VolumeError("invalid_vm_id", `invalid vm id ${JSON.stringify(vmId)} (usage: 1-64 of A-Z a-z 0-9 _ -)`);
  }
}

/** `<dataDir>/vms` */
export function vmsDir(dataDir: string): string {
  return join(resolve(dataDir), "vms");
}

/** `<dataDir>/vms/<vmId>`, after checking the id. */
export function vmDir(dataDir: string, vmId: string): string {
  checkVmId(vmId);
  return join(vmsDir(dataDir), vmId);
}

/** `<dataDir>/data-files`: where operators put files renters may attach with `data_file_name`. */
export function dataFilesDir(dataDir: string): string {
  return join(resolve(dataDir), "data-files");
}

/**
 * Resolves DBC's `data_file_name` to a path in `<dataDir>/data-files/`. The name must be a plain
 * file name (no `/`, `\`, NUL, not `.`/`..`, no `..` inside) of an existing regular file.
 */
export async function resolveDataFile(dataDir: string, name: string): Promise<string> {
  if (name === "" || name.length > 255 || /[/\\\0]/.test(name) || name.includes("..") || name === ".") {
    throw new VolumeError("invalid_data_file_name", `data_file_name is invalid: ${JSON.stringify(name)}`);
  }
  const path = join(dataFilesDir(dataDir), name);
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) {
    // DBC's wording, with batu's folder.
    throw new VolumeError("data_file_not_found", `data_file_name is not exist, path: ${path}`);
  }
  return path;
}

/**
 * Creates a VM's disks: `vda.qcow2` as an overlay on the base image and `vdb` as a new qcow2 of
 * `dataDiskSizeBytes` or the operator's data file. Each step registers its undo on `reverter`
 * (the caller runs `revert()` if anything later fails). Returns the disks in guest order.
 */
export async function createVmVolumes(
  input: CreateVmVolumesInput,
  reverter: Reverter,
  opts: QemuImgCallOptions = {},
): Promise<VmDisk[]> {
  const dir = vmDir(input.dataDir, input.vmId);
  // Validate everything that needs no host change first, so a bad request leaves nothing behind.
  const dataFilePath =
    input.dataFileName !== undefined ? await resolveDataFile(input.dataDir, input.dataFileName) : undefined;
  // -U: the data file may be open elsewhere; QEMU's own lock decides at start whether it can be used.
  const dataFile = dataFilePath !== undefined ? await imageInfo(dataFilePath, { ...opts, shared: true }) : undefined;
  // A guest-written raw file can look like qcow2 pointing at any host file: never follow one.
  if (dataFile !== undefined && dataFile.backingFile !== null) {
    throw new VolumeError("data_file_has_backing_file", `data_file_name has a backing file: ${input.dataFileName ?? ""}`);
  }
  if (dataFile !== undefined && dataFile.format !== "qcow2" && dataFile.format !== "raw") {
    throw new VolumeError("data_file_format", `data_file_name is a ${dataFile.format} image: qcow2 or raw only`);
  }
  const base = await imageInfo(input.baseImagePath, { ...opts, shared: true });
  if (input.systemDiskSizeBytes !== undefined && input.systemDiskSizeBytes < base.virtualSizeBytes) {
    throw new VolumeError(
      "system_disk_too_small",
      `system disk size ${input.systemDiskSizeBytes} is smaller than the image (${base.virtualSizeBytes} bytes)`,
    );
  }

  await mkdir(vmsDir(input.dataDir), { recursive: true, mode: 0o700 });
  try {
    // A guest's disks: the owner's alone, whatever the umask (mkdir's mode is masked by it, never widened).
    await mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      throw new VolumeError("vm_dir_exists", `disks of vm ${input.vmId} already exist: ${dir}`);
    }
    throw e;
  }
  reverter.add(`remove vm folder ${dir}`, () => rm(dir, { recursive: true, force: true }));

  const disks: VmDisk[] = [];
  const vdaPath = join(dir, SYSTEM_DISK_FILE);
  reverter.add(`remove ${vdaPath}`, () => rm(vdaPath, { force: true }));
  const vda = await createOverlay(input.baseImagePath, vdaPath, {
    ...opts,
    ...(input.systemDiskSizeBytes !== undefined ? { sizeBytes: input.systemDiskSizeBytes } : {}),
  });
  await chmod(vdaPath, 0o600);
  disks.push({ id: "vda", path: vdaPath, format: "qcow2", external: false, virtualSizeBytes: vda.virtualSizeBytes });

  if (dataFilePath !== undefined && dataFile !== undefined) {
    disks.push({ id: "vdb", path: dataFilePath, format: dataFile.format as "qcow2" | "raw", external: true, virtualSizeBytes: dataFile.virtualSizeBytes });
  } else if (input.dataDiskSizeBytes !== undefined) {
    const vdbPath = join(dir, DATA_DISK_FILE);
    reverter.add(`remove ${vdbPath}`, () => rm(vdbPath, { force: true }));
    const vdb = await createDisk(vdbPath, input.dataDiskSizeBytes, "qcow2", opts);
    await chmod(vdbPath, 0o600);
    disks.push({ id: "vdb", path: vdbPath, format: "qcow2", external: false, virtualSizeBytes: vdb.virtualSizeBytes });
  }
  return disks;
}

/** Deletes a VM's folder and the disks in it (never an external data file). Missing is fine. */
export async function removeVmVolumes(dataDir: string, vmId: string): Promise<void> {
  await rm(vmDir(dataDir, vmId), { recursive: true, force: true });
}

/** Where VM folders without a record are set aside (reconcile), never deleted by batu. */
export function quarantineDir(dataDir: string): string {
  return join(resolve(dataDir), "quarantine");
}

/** Moves VM `vmId`'s folder to `<dataDir>/quarantine/<vmId>-<time>`; answers where it went. */
export async function quarantineVmDir(dataDir: string, vmId: string): Promise<string> {
  checkVmId(vmId);
  await mkdir(quarantineDir(dataDir), { recursive: true, mode: 0o700 });
  const target = join(quarantineDir(dataDir), `${vmId}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  await rename(vmDir(dataDir, vmId), target);
  return target;
}

/** Lists the VM folders under `<dataDir>/vms/` (folders whose name is not a valid vm id are skipped). */
export async function listVmDirs(dataDir: string): Promise<VmDirEntry[]> {
  const root = vmsDir(dataDir);
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: VmDirEntry[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || !VM_ID_RE.test(entry.name)) continue;
    const path = join(root, entry.name);
    const files = (await readdir(path)).sort();
    out.push({ vmId: entry.name, path, files });
  }
  return out.sort((a, b) => a.vmId.localeCompare(b.vmId));
}
