import { readFile } from "node:fs/promises";
import type { QmpClient } from "./qmp/client.js";

/** Linux reports /proc times in USER_HZ ticks; USER_HZ is fixed at 100 by the x86-64 ABI. */
const USER_HZ = 100;
const MS_PER_TICK = 1000 / USER_HZ;

/** What a running VM uses, as the host sees it. Counters are cumulative since QEMU started. */
export interface QemuStats {
  /** Guest vCPU threads' user+system time, summed. */
  vcpuTimeMs: number;
  /** The whole QEMU process's user+system time (vCPUs plus emulation, I/O, slirp). */
  processCpuTimeMs: number;
  vcpuCount: number;
  /** QEMU process resident memory (VmRSS). */
  rssBytes: number;
  /** Since the QEMU process started. */
  uptimeMs: number;
  disks: DiskStats[];
  nics: NicStats[];
}

export interface DiskStats {
  /** The disk id of the spec (the virtio-blk device id). */
  id: string;
  rdBytes: number;
  wrBytes: number;
  rdOps: number;
  wrOps: number;
}

/**
 * Guest-view NIC counters, or null where no honest source exists. QEMU 7.2 has no per-netdev byte
 * counters over QMP (query-stats has no net provider; x-query-virtio-* gives ring indices only), so
 * only tap NICs have numbers: from the tap's host sysfs counters, swapped to the guest's view.
 */
export interface NicStats {
  id: string;
  rxBytes: number | null;
  txBytes: number | null;
}

/** The NICs to report: their ids, and the host tap for tap NICs. */
export type NicRef = { id: string; kind: "user" | "mcast" } | { id: string; kind: "tap"; ifname: string };

interface CpuInfoFast {
  "cpu-index": number;
  "thread-id": number;
}

interface BlockStatsEntry {
  device: string;
  qdev?: string;
  stats: { rd_bytes: number; wr_bytes: number; rd_operations: number; wr_operations: number };
}

export interface StatsSources {
  procRoot?: string;
  sysClassNet?: string;
}

/** Collects a VM's stats from QMP and /proc. */
export async function collectQemuStats(qmp: QmpClient, pid: number, nics: readonly NicRef[] = [], src: StatsSources = {}): Promise<QemuStats> {
  const proc = src.procRoot ?? "/proc";
  const [cpus, blocks, processStat, status, uptime] = await Promise.all([
    qmp.execute<CpuInfoFast[]>("query-cpus-fast"),
    qmp.execute<BlockStatsEntry[]>("query-blockstats"),
    readFile(`${proc}/${pid}/stat`, "utf8"),
    readFile(`${proc}/${pid}/status`, "utf8"),
    readFile(`${proc}/uptime`, "utf8"),
  ]);
  // Single-threaded TCG runs every vCPU on one thread: count each thread once.
  const threadIds = [...new Set(cpus.map((c) => c["thread-id"]))];
  const threadTimes = await Promise.all(
    threadIds.map(async (tid) => {
      try {
        return parseProcStat(await readFile(`${proc}/${pid}/task/${tid}/stat`, "utf8")).cpuTicks;
      } catch {
        return 0; // the thread ended between the two reads (vCPU unplug, QEMU exiting)
      }
    }),
  );
  const stat = parseProcStat(processStat);
  const bootSeconds = Number(uptime.split(" ")[0]);
  return {
    vcpuTimeMs: threadTimes.reduce((a, b) => a + b, 0) * MS_PER_TICK,
    processCpuTimeMs: stat.cpuTicks * MS_PER_TICK,
    vcpuCount: cpus.length,
    rssBytes: parseVmRssBytes(status),
    uptimeMs: Math.max(0, Math.round(bootSeconds * 1000 - stat.startTicks * MS_PER_TICK)),
    disks: parseBlockStats(blocks),
    nics: await Promise.all(nics.map((n) => nicStats(n, src.sysClassNet ?? "/sys/class/net"))),
  };
}

/** utime+stime and starttime (ticks) from a /proc/<pid>/stat line; comm may hold spaces and ')'. */
export function parseProcStat(stat: string): { cpuTicks: number; startTicks: number } {
  // Fields after "(comm) ": index 0 is field 3 (state); utime=14, stime=15, starttime=22.
  const f = stat.slice(stat.lastIndexOf(")") + 2).trim().split(/\s+/);
  const field = (n: number): number => Number(f[n - 3] ?? NaN);
  const utime = field(14);
  const stime = field(15);
  const start = field(22);
  if (![utime, stime, start].every(Number.isFinite)) throw new Error("unreadable /proc stat line");
  return { cpuTicks: utime + stime, startTicks: start };
}

/** VmRSS from /proc/<pid>/status, in bytes. */
export function parseVmRssBytes(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error("no VmRSS in /proc status");
  return Number(m[1]) * 1024;
}

/** Per-disk counters from query-blockstats, keyed by the virtio-blk device id. */
export function parseBlockStats(entries: readonly BlockStatsEntry[]): DiskStats[] {
  const out: DiskStats[] = [];
  for (const e of entries) {
    // -blockdev disks have no legacy "device" name; qdev is "/machine/peripheral/<id>/virtio-backend".
    const id = /^\/machine\/peripheral\/([^/]+)\/virtio-backend$/.exec(e.qdev ?? "")?.[1] ?? (e.device || undefined);
    if (id === undefined) continue; // firmware flash and other board devices
    out.push({
      id,
      rdBytes: e.stats.rd_bytes,
      wrBytes: e.stats.wr_bytes,
      rdOps: e.stats.rd_operations,
      wrOps: e.stats.wr_operations,
    });
  }
  return out;
}

async function nicStats(nic: NicRef, sysClassNet: string): Promise<NicStats> {
  if (nic.kind !== "tap") return { id: nic.id, rxBytes: null, txBytes: null };
  const read = async (name: string): Promise<number | null> => {
    try {
      return Number((await readFile(`${sysClassNet}/${nic.ifname}/statistics/${name}`, "utf8")).trim());
    } catch {
      return null;
    }
  };
  // What the host's tap sends is what the guest receives, and the other way round.
  const [tapTx, tapRx] = await Promise.all([read("tx_bytes"), read("rx_bytes")]);
  return { id: nic.id, rxBytes: tapTx, txBytes: tapRx };
}
