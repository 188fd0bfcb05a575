import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { imageInfo } from "../storage/qemu-img.js";
import { dataDisksOf, withDiskSize } from "./spec.js";
import type { Hypervisor } from "../hypervisor/driver.js";
import { listVmDirs, quarantineVmDir, removeVmVolumes, vmDir } from "../storage/volumes.js";
import { settleDiskSwap } from "./disk-swap.js";
import type { Logger } from "../lib/logger.js";
import type { GuestNetwork } from "./guest-network.js";
import type { GuestGpus } from "./guest-gpus.js";
import type { VmRecord, VmRepo } from "./repo.js";
import type { VmRuntime } from "./runtime.js";
import type { VmPortReservations } from "./ports.js";
import { holdsResources, isErrorStatus, type VmStatus } from "./state.js";

export interface ReconcileDeps {
  dataDir: string;
  hypervisor: Hypervisor;
  repo: VmRepo;
  runtime: VmRuntime;
  ports: VmPortReservations;
  network: GuestNetwork;
  gpus: GuestGpus;
  log: Logger;
}

export interface ReconcileReport {
  adopted: string[];
  foundStopped: string[];
  finished: string[];
  /** VM folders no record owned, moved to `<data>/quarantine/` (their QEMU stopped). */
  orphansQuarantined: string[];
}

/** Operations that were under way when the agent stopped, and how each ends once we are back. */
const FINISH: Partial<Record<VmStatus, "running" | "closed" | "delete" | "create error">> = {
  creating: "create error",
  starting: "running",
  restarting: "running",
  resetting: "running",
  "being shutdown": "closed",
  "being poweroff": "closed",
  deleting: "delete",
};

/** A disk change cut short (disk/service.ts): the VM's disk files and its record are made to agree. */
const DISK_CHANGES: ReadonlySet<VmStatus> = new Set<VmStatus>(["disk adding", "disk resizing", "disk deleting"]);

/**
 * After a disk change cut short: a data disk file the record does not list (made but not recorded,
 * or unrecorded but not yet removed) is removed, and a recorded size is the file's (grown but not
 * recorded). The disk calls' order makes both safe: a file is recorded before any guest sees it.
 */
async function settleDisks(d: ReconcileDeps, vm: VmRecord, log: Logger): Promise<void> {
  const dir = vmDir(d.dataDir, vm.id);
  const own = dataDisksOf(vm.spec).filter((disk) => !disk.external);
  const recorded = new Set(own.map((disk) => `${disk.name}.qcow2`));
  for (const file of await readdir(dir).catch(() => [] as string[])) {
    if (/^vd[b-z]\.qcow2$/.test(file) && !recorded.has(file)) {
      await rm(join(dir, file), { force: true });
      log.info({ file }, "unrecorded disk of a cut-short disk change removed");
    }
  }
  let spec = vm.spec;
  for (const disk of own) {
    const actual = await imageInfo(join(dir, `${disk.name}.qcow2`), { shared: true }).then((i) => i.virtualSizeBytes, () => null);
    if (actual !== null && actual !== disk.sizeBytes) spec = withDiskSize(spec, disk.name, actual);
  }
  if (spec !== vm.spec) d.repo.update(vm.id, { spec });
}

/** After a restore cut short (snapshot/service.ts): its disk swap is finished or undone. */
async function settleRestore(d: ReconcileDeps, vm: VmRecord, log: Logger): Promise<void> {
  const rolledForward = await settleDiskSwap(d.dataDir, vm.id, d.repo);
  log.info({ rolledForward }, rolledForward ? "restore cut short: finished" : "restore cut short: undone");
}

/**
 * At agent start: adopts every VM whose QEMU still runs, marks the ones that died while the agent
 * was away, finishes or undoes half-done operations, and sets aside what no record owns (VM folders
 * go to quarantine, the QEMU running from them is stopped). Afterwards no QEMU runs without a record and no disk lacks a VM.
 */
export async function reconcile(d: ReconcileDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { adopted: [], foundStopped: [], finished: [], orphansQuarantined: [] };
  const vms = d.repo.list();
  d.ports.restore();

  for (const vm of vms) {
    const runDir = d.runtime.runDir(vm.id);
    const pid = await d.hypervisor.findRunning(runDir);
    const finish = FINISH[vm.status];
    const log = d.log.child({ vm: vm.id });
    // A boot cut short leaves the secrets it wrote for QEMU.
    await d.runtime.clearStartSecrets(runDir);
    if (DISK_CHANGES.has(vm.status)) await settleDisks(d, vm, log);
    if (vm.status === "snapshot restoring") await settleRestore(d, vm, log);
    if (finish === "delete" || finish === "create error" || (finish === "closed" && pid !== null)) {
      if (pid !== null) await d.hypervisor.kill(pid, runDir);
      if (finish === "delete" || finish === "create error") {
        await removeVmVolumes(d.dataDir, vm.id);
        await rm(runDir, { recursive: true, force: true });
        d.ports.release(vm.id);
      }
      if (finish === "delete") d.repo.delete(vm.id);
      else d.repo.update(vm.id, { status: finish, pid: null, ready: false, lastError: finish === "create error" ? "the agent stopped during creation" : null });
      d.repo.log(vm.id, `agent restart: finished ${vm.status} as ${finish}`);
      log.info({ from: vm.status, to: finish }, "half-done operation finished");
      report.finished.push(vm.id);
      continue;
    }
    if (pid !== null) {
      try {
        await d.runtime.attach(vm.id, pid, { readyFromStart: true, alreadyReady: vm.ready });
        d.repo.update(vm.id, { pid, ...(finish ? { status: "running" as const } : isErrorStatus(vm.status) ? {} : { status: "running" as const }) });
        await d.network.adopted(vm, d.runtime.qmpOf(vm.id)!, log);
        report.adopted.push(vm.id);
        log.info({ pid }, "vm adopted");
        continue;
      } catch (e) {
        log.warn({ err: e, pid }, "vm could not be adopted: stopping it");
        await d.hypervisor.kill(pid, runDir);
      }
    }
    // No QEMU runs for it: the ports a modify kept for the one that ran are free again.
    d.ports.trimTo(vm.id, vm.spec);
    if (holdsResources(vm.status)) {
      d.repo.update(vm.id, { status: "closed", pid: null, ready: false, lastError: "found stopped at agent start" });
      d.repo.log(vm.id, "found stopped at agent start");
      report.foundStopped.push(vm.id);
    } else if (vm.pid !== null || vm.ready) {
      d.repo.update(vm.id, { pid: null, ready: false });
    }
  }

  const known = new Set(d.repo.list().map((v) => v.id));
  for (const dir of await listVmDirs(d.dataDir)) {
    if (known.has(dir.vmId)) continue;
    const pid = await d.hypervisor.findRunning(dir.path);
    if (pid !== null) await d.hypervisor.kill(pid, dir.path);
    await d.runtime.clearStartSecrets(dir.path);
    // No record: the store may have been lost or restored from an old copy. The disks may still be
    // someone's data, so they are set aside, never deleted; the operator decides.
    const kept = await quarantineVmDir(d.dataDir, dir.vmId);
    d.log.warn({ vm: dir.vmId, pid, kept }, "vm folder without a record quarantined");
    report.orphansQuarantined.push(dir.vmId);
  }
  await d.network.reconciled();
  // A GPU stays with a VM only while its QEMU runs: the others' are free (a crash, an agent SIGKILL).
  await d.gpus.reconciled(new Set(report.adopted));
  return report;
}
