/**
 * A VM's disks replaced by prepared files as one change an agent crash cannot cut in half (a snapshot
 * restore): the new files are written beside the old ones (`<disk>.qcow2.restore`), then a journal
 * naming them is written (the commit point), then each is renamed into place, the record follows and
 * the journal goes. At the next start, a journal found is rolled forward; prepared files without one
 * are removed (the VM keeps its old disks).
 */
import { existsSync } from "node:fs";
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { killPoint } from "../lib/kill-points.js";
import { SYSTEM_DISK_FILE, vmDir } from "../storage/volumes.js";
import type { VmRepo } from "./repo.js";
import { withDisk } from "./spec.js";

/** What a swap makes of the VM: its system disk's new base image, and the data disks replaced (or brought back). */
export interface DiskSwap {
  imageName: string;
  dataDisks: Array<{ name: string; sizeBytes: number }>;
}

const JOURNAL = "restore.json";
const PREPARED = ".restore";

/** Where the new file of disk `name` (`vda`, `vdb`…) is prepared before the swap. */
export function preparedDiskPath(dataDir: string, vmId: string, name: string): string {
  return join(vmDir(dataDir, vmId), `${name}.qcow2${PREPARED}`);
}

/** Swaps in the prepared files of `swap` (vda's and every data disk's must exist): commit, then apply. */
export async function swapDisks(dataDir: string, vmId: string, swap: DiskSwap, repo: VmRepo): Promise<void> {
  const journal = join(vmDir(dataDir, vmId), JOURNAL);
  await writeFile(`${journal}.tmp`, JSON.stringify(swap), { mode: 0o600 });
  await rename(`${journal}.tmp`, journal);
  killPoint("snapshot.restore.after-commit");
  await applyJournal(dataDir, vmId, swap, repo);
}

/**
 * At start, for a VM whose swap an agent stop cut short: rolls it forward when its journal was
 * written, or removes the prepared files when it was not. Answers whether it rolled forward.
 */
export async function settleDiskSwap(dataDir: string, vmId: string, repo: VmRepo): Promise<boolean> {
  const dir = vmDir(dataDir, vmId);
  const journal = join(dir, JOURNAL);
  await rm(`${journal}.tmp`, { force: true });
  if (existsSync(journal)) {
    await applyJournal(dataDir, vmId, JSON.parse(await readFile(journal, "utf8")) as DiskSwap, repo);
    return true;
  }
  for (const file of await readdir(dir).catch(() => [] as string[])) {
    if (file.endsWith(PREPARED)) await rm(join(dir, file), { force: true });
  }
  return false;
}

/** Idempotent: a prepared file already renamed is in place. */
async function applyJournal(dataDir: string, vmId: string, swap: DiskSwap, repo: VmRepo): Promise<void> {
  const dir = vmDir(dataDir, vmId);
  for (const name of ["vda", ...swap.dataDisks.map((d) => d.name)]) {
    const prepared = preparedDiskPath(dataDir, vmId, name);
    if (existsSync(prepared)) await rename(prepared, join(dir, name === "vda" ? SYSTEM_DISK_FILE : `${name}.qcow2`));
  }
  killPoint("snapshot.restore.after-disk");
  const vm = repo.get(vmId);
  if (vm) {
    repo.update(vmId, { spec: swap.dataDisks.reduce((spec, d) => withDisk(spec, d.name, d.sizeBytes), vm.spec) });
    repo.setImage(vmId, swap.imageName);
  }
  await rm(join(dir, JOURNAL), { force: true });
}
