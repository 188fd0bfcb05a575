import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { exec } from "../lib/exec.js";
import type { PciSysfs } from "./sysfs.js";

/** The host's NUMA nodes with their CPUs (`devices/system/node/node<N>/cpulist`, e.g. `0-15,32-47`). */
export async function numaCpus(sysfs: PciSysfs): Promise<Map<number, string>> {
  const dir = join(sysfs.root, "devices", "system", "node");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^node\d+$/.test(n));
  const out = new Map<number, string>();
  for (const n of names) {
    const list = (await readFile(join(dir, n, "cpulist"), "utf8").catch(() => "")).trim();
    if (/^[0-9,-]+$/.test(list)) out.set(Number(n.slice(4)), list);
  }
  return out;
}

/** Pins every thread of process `pid` (QEMU's vCPUs, its I/O threads) to `cpuList` (taskset, util-linux). */
export async function pinProcess(pid: number, cpuList: string): Promise<void> {
  await exec("taskset", ["--all-tasks", "--pid", "--cpu-list", cpuList, String(pid)], { timeoutMs: 10_000 });
}
