/**
 * A VM's data disks after its creation, as DBC's `disk/*` calls change them, and live where QEMU
 * allows it: a disk is added to a running VM by hot-plug (the guest sees it at once), grown with
 * `block_resize` (the guest is told the new size), and unplugged once the guest releases it. A
 * shut-off VM's disks change on file only. Every disk lives in the VM's folder under the data dir
 * (DBC's `mount_dir`, a host path, is never used). Each change runs under the VM's lock, shows DBC's
 * status (`disk adding`, `disk resizing`, `disk deleting`) meanwhile, and is recorded in the VM's
 * spec; the order of each (file, record, live) leaves the VM consistent if the agent dies half-way.
 */
import { chmod, rm } from "node:fs/promises";
import { join } from "node:path";
import { HypervisorError, HypervisorErrorCode, type Hypervisor } from "../hypervisor/driver.js";
import type { DiskThrottle } from "../hypervisor/qemu/spec.js";
import { killPoint } from "../lib/kill-points.js";
import { formatGiB as gib } from "../lib/units.js";
import { createDisk, imageInfo, resizeDisk } from "../storage/qemu-img.js";
import { dataFilesDir, vmDir } from "../storage/volumes.js";
import { FieldError } from "../vm/create-request.js";
import { VmConflictError, VmResourceError } from "../vm/errors.js";
import type { VmRecord, VmRepo } from "../vm/repo.js";
import { checkDiskRoom, type HostCapacity } from "../vm/resources.js";
import type { VmService } from "../vm/service.js";
import { dataDisksOf, withDiskSize, withoutDisk, type VmSpec } from "../vm/spec.js";
import type { RentalLimits } from "../auth/rental-ledger.js";
import { diskQuotaRefusal, heldBy } from "../rental/quota.js";

/** The names a data disk may have: vdb … vdz (vda is the system disk). */
export const DATA_DISK_NAME = /^vd[b-z]$/;

/** One disk of a VM as the disk list shows it. */
export interface VmDiskInfo {
  name: string;
  /** The file's name only: a renter never learns host paths. */
  file: string;
  /** What the guest sees; null when unknown (a system disk recorded before batu kept its size). */
  sizeBytes: number | null;
}

export interface DiskServiceOptions {
  dataDir: string;
  vms: VmService;
  repo: VmRepo;
  hypervisor: Hypervisor;
  capacity: () => Promise<HostCapacity>;
  /** How long an unplug waits for the guest to release the disk. */
  detachTimeoutMs: number;
  /** The cap a VM's disks share (its grant's, else the operator's), or null; default none. */
  diskThrottle?: (vm: VmRecord) => DiskThrottle | null;
}

export class DiskService {
  constructor(private readonly opts: DiskServiceOptions) {}

  /** A VM's disks in guest order: vda, then its data disks. */
  async list(vm: VmRecord): Promise<VmDiskInfo[]> {
    const disks: VmDiskInfo[] = [{ name: "vda", file: "vda.qcow2", sizeBytes: vm.systemDiskBytes }];
    for (const d of dataDisksOf(vm.spec)) {
      if (!d.external) {
        disks.push({ name: d.name, file: `${d.name}.qcow2`, sizeBytes: d.sizeBytes });
        continue;
      }
      const name = vm.spec.dataFileName!;
      const size = await imageInfo(join(dataFilesDir(this.opts.dataDir), name), { shared: true }).then(
        (i) => i.virtualSizeBytes,
        () => null,
      );
      disks.push({ name: d.name, file: name, sizeBytes: size });
    }
    return disks;
  }

  /** Adds a new empty data disk of `sizeBytes`, named after the last one (`vdc` after `vdb`); hot-plugged into a running VM. */
  async add(id: string, sizeBytes: number, quota?: RentalLimits): Promise<{ name: string }> {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) throw new FieldError("size", "'size' is invalid");
    return this.opts.vms.operate(id, "disk adding", async (vm, live) => {
      const name = nextDiskName(vm.spec);
      if (!name) throw new FieldError("size", "the task has 25 data disks already (vdb … vdz)");
      await this.checkRoom(vm, sizeBytes, quota);
      const path = this.pathOf(id, name);
      // A file of that name the spec does not list is what an agent killed during an add left.
      await rm(path, { force: true });
      await createDisk(path, sizeBytes, "qcow2");
      await chmod(path, 0o600);
      killPoint("disk.add.after-file");
      // Recorded before it is plugged: a crash in between leaves a disk the next boot attaches.
      const next: VmSpec = { ...vm.spec, extraDisks: [...(vm.spec.extraDisks ?? []), { name, sizeBytes }] };
      this.opts.repo.update(id, { spec: next });
      try {
        if (live) await this.opts.hypervisor.attachDisk(live.qmp, { id: name, path, format: "qcow2" });
      } catch (e) {
        this.opts.repo.update(id, { spec: vm.spec });
        await rm(path, { force: true });
        if (e instanceof HypervisorError && e.code === HypervisorErrorCode.NoHotplugPort) {
          throw new FieldError("size", `${e.message}: stop the task to add more disks (each boot gives every disk a place)`);
        }
        throw e;
      }
      // A plugged disk joins the VM's cap, as the ones it booted with did.
      const throttle = live && this.opts.diskThrottle?.(vm);
      if (live && throttle) {
        await this.opts.hypervisor.throttleDisk(live.qmp, name, throttle).catch((e: unknown) => {
          this.opts.repo.log(id, `disk ${name}: I/O cap not set (${e instanceof Error ? e.message : String(e)})`);
        });
      }
      this.opts.repo.log(id, `disk ${name} added: ${gib(sizeBytes)}${live ? " (hot-plugged)" : ""}`);
      return { name };
    });
  }

  /** Grows data disk `name` by `growBytes` (DBC's meaning of `size`); live on a running VM. Never shrinks. */
  async resize(id: string, name: string, growBytes: number, quota?: RentalLimits): Promise<{ sizeBytes: number }> {
    if (!Number.isSafeInteger(growBytes) || growBytes <= 0) throw new FieldError("size", "'size' is invalid");
    return this.opts.vms.operate(id, "disk resizing", async (vm, live) => {
      const disk = this.dataDisk(vm.spec, name);
      if (disk.external) throw new VmConflictError(`disk ${name} is the operator's data file: it is not resized`);
      await this.checkRoom(vm, growBytes, quota);
      const path = this.pathOf(id, name);
      // From the size the file has (a grow an agent crash did not record is not lost), never below it.
      const current = (await imageInfo(path, { shared: true })).virtualSizeBytes;
      const target = current + growBytes;
      if (live) await this.opts.hypervisor.resizeDisk(live.qmp, name, target);
      else await resizeDisk(path, target);
      killPoint("disk.resize.after-grow");
      this.opts.repo.update(id, { spec: withDiskSize(vm.spec, name, target) });
      this.opts.repo.log(id, `disk ${name} grown by ${gib(growBytes)} to ${gib(target)}${live ? " (live)" : ""}`);
      return { sizeBytes: target };
    });
  }

  /** Removes data disk `name` and its file (an operator's data file is only detached); unplugged live first. */
  async remove(id: string, name: string): Promise<void> {
    if (name === "vda") throw new FieldError("disk", "can not allowed to delete disk:'vda'");
    return this.opts.vms.operate(id, "disk deleting", async (vm, live) => {
      const disk = this.dataDisk(vm.spec, name);
      if (live) {
        await this.opts.hypervisor.detachDisk(live.qmp, name, { timeoutMs: this.opts.detachTimeoutMs }).catch((e: unknown) => {
          if (e instanceof HypervisorError && e.code === HypervisorErrorCode.DiskBusy) {
            throw new VmConflictError(`${e.message}: shut the task down and delete the disk then`);
          }
          throw e;
        });
      }
      killPoint("disk.delete.after-detach");
      this.opts.repo.update(id, { spec: withoutDisk(vm.spec, name) });
      if (!disk.external) await rm(this.pathOf(id, name), { force: true });
      this.opts.repo.log(id, `disk ${name} deleted${live ? " (unplugged)" : ""}${disk.external ? " (the operator's data file is kept)" : ""}`);
    });
  }

  /**
   * Refuses `bytes` more of disk for `vm` beyond what the host has free, what all VMs were promised,
   * the operator's quota per renter, and what the renter's rental of the node gives (`quota`).
   */
  private async checkRoom(vm: VmRecord, bytes: number, quota?: RentalLimits): Promise<void> {
    const all = this.opts.repo.list();
    if (quota && vm.owner !== null) {
      const held = heldBy(vm.owner, all).reduce((n, d) => n + d.diskBytes, 0);
      const over = diskQuotaRefusal(quota, held, bytes);
      if (over) throw new VmResourceError("size", over);
    }
    const refusal = checkDiskRoom(await this.opts.capacity(), all, vm.owner, bytes);
    if (refusal) throw new VmResourceError("size", refusal.message);
  }

  private dataDisk(spec: VmSpec, name: string) {
    const disk = dataDisksOf(spec).find((d) => d.name === name);
    if (!disk) throw new FieldError("disk", `task have no disk:${name}`);
    return disk;
  }

  private pathOf(id: string, name: string): string {
    return join(vmDir(this.opts.dataDir, id), `${name}.qcow2`);
  }
}

/** The next data disk name after the VM's last one (`vdb` when it has none), or undefined past `vdz`. */
export function nextDiskName(spec: VmSpec): string | undefined {
  const last = dataDisksOf(spec).at(-1)?.name ?? "vda";
  const next = String.fromCharCode(last.charCodeAt(2) + 1);
  return next <= "z" ? `vd${next}` : undefined;
}

