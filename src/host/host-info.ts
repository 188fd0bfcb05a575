import { readFile, stat, statfs } from "node:fs/promises";
import { arch, cpus, hostname, loadavg, release, uptime } from "node:os";
import { resolve } from "node:path";

/** What a node reports about itself: DBC's node info (`os`, `cpu`, `mem`, `disk_data`) and capacity. */
export interface HostInfo {
  hostname: string;
  /** PRETTY_NAME of /etc/os-release, e.g. `Debian GNU/Linux 12 (bookworm)`. */
  os: string;
  /** `uname -r`. */
  kernel: string;
  arch: string;
  cpu: HostCpu;
  memory: { totalBytes: number; availableBytes: number };
  /** The file system holding the data dir (VM disks, images). */
  disk: { path: string; totalBytes: number; freeBytes: number; kind: DiskKind | null };
  uptimeSec: number;
  /** 1, 5 and 15 minute load averages. */
  loadAverage: [number, number, number];
}

export interface HostCpu {
  /** `model name` of /proc/cpuinfo, e.g. `AMD EPYC 7543 32-Core Processor`. */
  model: string;
  /** Logical CPUs (what QEMU's -smp counts). */
  threads: number;
  /** Distinct `physical id`s; absent when /proc/cpuinfo does not say (some VMs, ARM). */
  sockets?: number;
  /** `cpu cores` (physical cores per socket), when known. */
  coresPerSocket?: number;
  /** Current clock of the first CPU in MHz, when known. */
  mhz?: number;
}

/** What DBC's node info calls a disk's `type`. */
export type DiskKind = "SSD" | "HDD";

/** Where the readers look; tests point them at fixtures. */
export interface HostInfoSources {
  osReleasePath?: string;
  meminfoPath?: string;
  cpuinfoPath?: string;
  /** Where sysfs is mounted. @default "/sys" */
  sysRoot?: string;
}

/**
 * Whether the block device `dev` (a stat's st_dev) spins: its queue's `rotational` flag in sysfs, or
 * the parent disk's for a partition. Null when sysfs does not say (tmpfs, overlay, some VMs).
 */
export async function diskKind(dev: number, sysRoot = "/sys"): Promise<DiskKind | null> {
  // Linux's dev_t: 12 bits of major above 8 bits of minor, the rest of the minor in the high bits.
  const major = (dev >> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  const device = `${sysRoot}/dev/block/${major}:${minor}`;
  for (const flag of [`${device}/queue/rotational`, `${device}/../queue/rotational`]) {
    const v = (await readOptional(flag)).trim();
    if (v === "0") return "SSD";
    if (v === "1") return "HDD";
  }
  return null;
}

/** Parses os-release (`KEY=value`, values optionally quoted) into a map. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2] ?? "";
    const q = v[0];
    if ((q === '"' || q === "'") && v.endsWith(q) && v.length >= 2) {
      v = v.slice(1, -1);
      if (q === '"') v = v.replace(/\\(["\\$`])/g, "$1");
    }
    out[m[1]!] = v;
  }
  return out;
}

/** Parses /proc/meminfo into bytes per key (`MemTotal: 24684084 kB` → 25276502016). */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^([^:]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * (line.trimEnd().endsWith("kB") ? 1024 : 1);
  }
  return out;
}

/** Reads the model, sockets and cores per socket out of /proc/cpuinfo. */
export function parseCpuinfo(text: string): { model?: string; sockets?: number; coresPerSocket?: number; mhz?: number } {
  let model: string | undefined;
  let coresPerSocket: number | undefined;
  let mhz: number | undefined;
  const sockets = new Set<string>();
  for (const line of text.split("\n")) {
    const idx = line.indexOf(":");
    if (idx < 0) continue;
    const k = line.slice(0, idx).trim();
    const v = line.slice(idx + 1).trim();
    if (k === "model name" && model === undefined) model = v;
    else if (k === "physical id") sockets.add(v);
    else if (k === "cpu cores" && coresPerSocket === undefined && /^\d+$/.test(v)) coresPerSocket = Number(v);
    else if (k === "cpu MHz" && mhz === undefined && Number(v) > 0) mhz = Number(v);
  }
  return {
    ...(model !== undefined ? { model } : {}),
    ...(sockets.size > 0 ? { sockets: sockets.size } : {}),
    ...(coresPerSocket !== undefined ? { coresPerSocket } : {}),
    ...(mhz !== undefined ? { mhz } : {}),
  };
}

async function readOptional(path: string): Promise<string> {
  return readFile(path, "utf8").catch(() => "");
}

/**
 * Reads the host: name, OS, kernel, CPU, memory (MemAvailable, not MemFree), the data dir's file
 * system (free = space available to unprivileged writers) and uptime. Throws if `dataDir` is missing.
 */
export async function readHostInfo(dataDir: string, sources: HostInfoSources = {}): Promise<HostInfo> {
  const path = resolve(dataDir);
  const [osRelease, meminfo, cpuinfo, fsStats, kind] = await Promise.all([
    readOptional(sources.osReleasePath ?? "/etc/os-release"),
    readOptional(sources.meminfoPath ?? "/proc/meminfo"),
    readOptional(sources.cpuinfoPath ?? "/proc/cpuinfo"),
    statfs(path),
    stat(path).then((st) => diskKind(st.dev, sources.sysRoot)),
  ]);
  const osr = parseOsRelease(osRelease);
  const mem = parseMeminfo(meminfo);
  const cpuFile = parseCpuinfo(cpuinfo);
  const cpuList = cpus();
  // Node reads cpufreq, which virtual machines often lack (speed 0): /proc/cpuinfo's "cpu MHz" then.
  const mhz = cpuList[0]?.speed || cpuFile.mhz;
  const totalBytes = mem.MemTotal ?? 0;
  return {
    hostname: hostname(),
    os: osr.PRETTY_NAME ?? osr.NAME ?? "Linux",
    kernel: release(),
    arch: arch(),
    cpu: {
      model: cpuFile.model ?? cpuList[0]?.model ?? "unknown",
      threads: cpuList.length,
      ...(cpuFile.sockets !== undefined ? { sockets: cpuFile.sockets } : {}),
      ...(cpuFile.coresPerSocket !== undefined ? { coresPerSocket: cpuFile.coresPerSocket } : {}),
      ...(mhz ? { mhz } : {}),
    },
    memory: {
      totalBytes,
      // Kernels before 3.14 lack MemAvailable; MemFree understates but is safe.
      availableBytes: mem.MemAvailable ?? mem.MemFree ?? 0,
    },
    disk: {
      path,
      totalBytes: fsStats.blocks * fsStats.bsize,
      freeBytes: fsStats.bavail * fsStats.bsize,
      kind,
    },
    uptimeSec: Math.floor(uptime()),
    loadAverage: loadavg() as [number, number, number],
  };
}
