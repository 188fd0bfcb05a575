import { access } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../lib/logger.js";
import { imageInfo } from "../storage/qemu-img.js";
import { SYSTEM_DISK_FILE } from "../storage/volumes.js";
import type { VmRecord, VmRepo } from "./repo.js";

/**
 * The system disk's virtual size of each VM, as a task's detail shows it. Kept in the VM's record
 * (creation writes it): reading it from the disk took a qemu-img process per request. Records made
 * before batu kept it get it read from the disk once and stored.
 */
export class SystemDiskSizes {
  /** Reads under way: concurrent first requests for one VM share one qemu-img. */
  private readonly reads = new Map<string, Promise<number | null>>();

  constructor(
    private readonly repo: VmRepo,
    /** The folder of a VM's disks. */
    private readonly dirOf: (id: string) => string,
    private readonly log: Logger,
  ) {}

  /** The size in bytes; null while the VM is being created or when it has no disk. */
  of(vm: VmRecord): Promise<number | null> {
    if (vm.systemDiskBytes !== null) return Promise.resolve(vm.systemDiskBytes);
    // Creation records the size itself (and clears it again if it fails): nothing to fill in.
    if (vm.status === "creating") return Promise.resolve(null);
    let read = this.reads.get(vm.id);
    if (!read) {
      read = this.fill(vm.id).finally(() => this.reads.delete(vm.id));
      this.reads.set(vm.id, read);
    }
    return read;
  }

  private async fill(id: string): Promise<number | null> {
    const path = join(this.dirOf(id), SYSTEM_DISK_FILE);
    // No disk (its creation failed): a stat, rather than a qemu-img that would fail on every call.
    if (!(await access(path).then(() => true, () => false))) return null;
    let sizeBytes: number;
    try {
      sizeBytes = (await imageInfo(path, { shared: true })).virtualSizeBytes;
    } catch (e) {
      this.log.warn({ vm: id, err: e }, "system disk size unreadable");
      return null;
    }
    this.repo.setSystemDiskBytes(id, sizeBytes);
    return sizeBytes;
  }
}
