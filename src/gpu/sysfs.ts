import { readFile, readdir, readlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";

/**
 * The PCI part of sysfs that GPU passthrough reads and writes, rooted where the host's is (`/sys`)
 * or where a test built a fake tree (`BATU_SYSFS_ROOT`). Every write goes through `write`, so a test
 * can stand in for the kernel (bind a device when its driver is probed).
 */
export class PciSysfs {
  constructor(readonly root: string = process.env.BATU_SYSFS_ROOT ?? "/sys") {}

  device(address: string): string {
    return join(this.root, "bus", "pci", "devices", address);
  }

  async devices(): Promise<string[]> {
    return (await readdir(join(this.root, "bus", "pci", "devices")).catch(() => [] as string[])).sort();
  }

  async read(address: string, file: string): Promise<string | null> {
    return readFile(join(this.device(address), file), "utf8").then(
      (s) => s.trim(),
      () => null,
    );
  }

  /** The kernel driver bound to the device now, or null. */
  async driver(address: string): Promise<string | null> {
    const link = await readlink(join(this.device(address), "driver")).catch(() => null);
    return link === null ? null : basename(link);
  }

  async iommuGroup(address: string): Promise<{ group: number; devices: string[] } | null> {
    const link = await readlink(join(this.device(address), "iommu_group")).catch(() => null);
    if (link === null || !/^\d+$/.test(basename(link))) return null;
    const devices = await readdir(join(this.device(address), "iommu_group", "devices")).catch(() => [] as string[]);
    return { group: Number(basename(link)), devices: devices.sort() };
  }

  /** Whether the vfio-pci driver is there to bind to (the module loaded). */
  async hasVfioDriver(): Promise<boolean> {
    return readdir(join(this.root, "bus", "pci", "drivers", "vfio-pci")).then(
      () => true,
      () => false,
    );
  }

  /** Writes `value` to a sysfs file (relative to the root): what the kernel acts on. */
  async write(path: string, value: string): Promise<void> {
    await writeFile(join(this.root, path), value);
  }
}
