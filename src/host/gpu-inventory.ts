import { constants } from "node:fs";
import { access, readFile, readdir, readlink } from "node:fs/promises";
import { basename, delimiter, join } from "node:path";
import { exec } from "../lib/index.js";

/** Vendor names of the PCI vendor ids batu knows. */
export const GpuVendors = { "10de": "NVIDIA", "1002": "AMD", "8086": "Intel" } as const;
export type GpuVendorName = (typeof GpuVendors)[keyof typeof GpuVendors];

/** One display controller (PCI class 0x03xxxx) of the host. */
export interface GpuDevice {
  /** Full PCI address, e.g. `0000:07:00.0`. */
  pciAddress: string;
  /** Four lower-case hex digits without `0x`, e.g. `10de`. */
  vendorId: string;
  deviceId: string;
  /** `0x030000` VGA, `0x030200` 3D controller, `0x038000` other display. */
  classCode: string;
  vendorName: GpuVendorName | null;
  /** Kernel driver bound now (`nvidia`, `amdgpu`, `vfio-pci`, ...), or null when none. */
  driver: string | null;
  /** IOMMU group number, or null when the IOMMU is off (then no passthrough). */
  iommuGroup: number | null;
  /** The other devices of the IOMMU group (they pass through together), sorted. */
  iommuGroupDevices: string[];
  /** The firmware's boot display (`boot_vga`): passing it through takes the host's console. */
  bootVga: boolean;
  /** From nvidia-smi when present. */
  model?: string;
  memoryTotalMiB?: number;
  memoryUsedMiB?: number;
  uuid?: string;
  nvidiaIndex?: number;
}

/** One line of `nvidia-smi --query-gpu=index,name,pci.bus_id,memory.total,memory.used,uuid`. */
export interface NvidiaSmiGpu {
  index: number;
  name: string;
  pciAddress: string;
  memoryTotalMiB: number;
  memoryUsedMiB: number;
  uuid: string;
}

export interface ListGpusOptions {
  /** Root of sysfs; default `/sys`. Tests build a fake tree. */
  sysfsRoot?: string;
  /** nvidia-smi to run (a name looked up in PATH, or a path); false to skip it. Default `nvidia-smi`. */
  nvidiaSmi?: string | false;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Told when nvidia-smi exists but fails (driver not loaded, ...); the sysfs list is still returned. */
  onWarning?: (message: string, error: unknown) => void;
}

export const NVIDIA_SMI_ARGS = [
  "--query-gpu=index,name,pci.bus_id,memory.total,memory.used,uuid",
  "--format=csv,noheader,nounits",
] as const;

/** `00000000:07:00.0` (nvidia-smi) or `0000:07:00.0` → `0000:07:00.0`, lower case. */
export function normalizePciAddress(address: string): string {
  const m = /^(?:([0-9a-f]{4,8}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(address.trim());
  if (!m) return address.trim().toLowerCase();
  const domain = (m[1] ?? "0000").slice(-4);
  return `${domain}:${m[2]}:${m[3]}.${m[4]}`.toLowerCase();
}

/** Parses nvidia-smi's CSV (no header, no units). Lines that do not fit are skipped. */
export function parseNvidiaSmiCsv(text: string): NvidiaSmiGpu[] {
  const out: NvidiaSmiGpu[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(",").map((s) => s.trim());
    if (f.length !== 6) continue;
    const [index, name, bus, total, used, uuid] = f as [string, string, string, string, string, string];
    if (!/^\d+$/.test(index)) continue;
    const num = (s: string): number => (/^\d+(\.\d+)?$/.test(s) ? Number(s) : 0); // "[N/A]" → 0
    out.push({
      index: Number(index),
      name,
      pciAddress: normalizePciAddress(bus),
      memoryTotalMiB: num(total),
      memoryUsedMiB: num(used),
      uuid,
    });
  }
  return out;
}

async function readTrim(path: string): Promise<string | null> {
  return readFile(path, "utf8").then(
    (s) => s.trim(),
    () => null,
  );
}

const hex4 = (s: string | null): string => (s ?? "").replace(/^0x/i, "").toLowerCase().padStart(4, "0");

async function readDevice(root: string, address: string): Promise<GpuDevice | null> {
  const dir = join(root, "bus", "pci", "devices", address);
  const classCode = (await readTrim(join(dir, "class")))?.toLowerCase();
  if (!classCode || !/^0x03[0-9a-f]{4}$/.test(classCode)) return null;
  const vendorId = hex4(await readTrim(join(dir, "vendor")));
  const deviceId = hex4(await readTrim(join(dir, "device")));
  const driverLink = await readlink(join(dir, "driver")).catch(() => null);
  const groupLink = await readlink(join(dir, "iommu_group")).catch(() => null);
  const iommuGroup = groupLink !== null && /^\d+$/.test(basename(groupLink)) ? Number(basename(groupLink)) : null;
  const groupDevices =
    iommuGroup === null ? [] : await readdir(join(dir, "iommu_group", "devices")).catch(() => [] as string[]);
  return {
    pciAddress: address,
    vendorId,
    deviceId,
    classCode,
    vendorName: (GpuVendors as Record<string, GpuVendorName>)[vendorId] ?? null,
    driver: driverLink === null ? null : basename(driverLink),
    iommuGroup,
    iommuGroupDevices: groupDevices.filter((d) => d !== address).sort(),
    bootVga: (await readTrim(join(dir, "boot_vga"))) === "1",
  };
}

/** Finds an executable: a path is checked as it is, a bare name is looked up in PATH. */
export async function findExecutable(name: string): Promise<string | null> {
  const candidates = name.includes("/")
    ? [name]
    : (process.env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

/** Runs nvidia-smi when it exists; null when it does not. Throws an ExecError when it fails. */
export async function queryNvidiaSmi(
  nvidiaSmi = "nvidia-smi",
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<NvidiaSmiGpu[] | null> {
  const bin = await findExecutable(nvidiaSmi);
  if (bin === null) return null;
  const { stdout } = await exec(bin, NVIDIA_SMI_ARGS, {
    timeoutMs: opts.timeoutMs ?? 10_000,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return parseNvidiaSmiCsv(stdout);
}

/**
 * Lists the host's display controllers from sysfs (`<root>/bus/pci/devices/*` with class 0x03xxxx),
 * with driver and IOMMU group, and adds model and memory from nvidia-smi when it is installed.
 * Sorted by PCI address. An empty list on a host without GPUs.
 */
export async function listGpus(opts: ListGpusOptions = {}): Promise<GpuDevice[]> {
  const root = opts.sysfsRoot ?? "/sys";
  const addresses = await readdir(join(root, "bus", "pci", "devices")).catch(() => [] as string[]);
  const gpus = (await Promise.all(addresses.map((a) => readDevice(root, a)))).filter((g): g is GpuDevice => g !== null);
  gpus.sort((a, b) => a.pciAddress.localeCompare(b.pciAddress));

  const nvidiaSmi = opts.nvidiaSmi ?? "nvidia-smi";
  if (nvidiaSmi !== false && gpus.some((g) => g.vendorId === "10de")) {
    let smi: NvidiaSmiGpu[] | null = null;
    try {
      smi = await queryNvidiaSmi(nvidiaSmi, {
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      opts.onWarning?.("nvidia-smi failed; GPU models and memory are unknown", e);
    }
    for (const s of smi ?? []) {
      const g = gpus.find((x) => x.pciAddress === s.pciAddress);
      if (!g) continue;
      Object.assign(g, {
        model: s.name,
        memoryTotalMiB: s.memoryTotalMiB,
        memoryUsedMiB: s.memoryUsedMiB,
        uuid: s.uuid,
        nvidiaIndex: s.index,
      });
    }
  }
  return gpus;
}
