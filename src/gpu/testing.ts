/** A fake sysfs tree laid out as on a real 8-GPU host, and a kernel that binds drivers in it (tests only). */
import { mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { basename, join } from "node:path";
import { PciSysfs } from "./sysfs.js";

export interface FakePciDevice {
  address: string;
  vendor: string;
  device: string;
  class: string;
  driver: string | null;
  iommuGroup: number | null;
  numaNode: number;
  bootVga?: boolean;
}

/** Eight H100s (10de:2330, with an audio function each), four per NUMA node, each slot in an IOMMU group of its own with its bridge. */
export function eightGpuHost(): FakePciDevice[] {
  const slots = ["1b", "1c", "3d", "3e", "b1", "b2", "da", "db"];
  return slots.flatMap((bus, i): FakePciDevice[] => {
    const numaNode = i < 4 ? 0 : 1;
    const group = 20 + i;
    return [
      { address: `0000:${bus}:00.0`, vendor: "0x10de", device: "0x2330", class: "0x030200", driver: "nvidia", iommuGroup: group, numaNode },
      { address: `0000:${bus}:00.1`, vendor: "0x10de", device: "0x22a3", class: "0x040300", driver: "snd_hda_intel", iommuGroup: group, numaNode },
      // The PCIe switch port above the GPU: in its group, never passed through.
      { address: `0000:${(parseInt(bus, 16) - 1).toString(16).padStart(2, "0")}:01.0`, vendor: "0x8086", device: "0x347a", class: "0x060400", driver: "pcieport", iommuGroup: group, numaNode },
    ];
  });
}

/**
 * Builds `devices` under `root` as sysfs lays them out: `bus/pci/devices/<addr>/{vendor,device,class,
 * numa_node,boot_vga,driver→,iommu_group→}`, `kernel/iommu_groups/<n>/devices/`, `bus/pci/drivers/<name>/`.
 */
export function buildFakeSysfs(root: string, devices: readonly FakePciDevice[], opts: { vfioLoaded?: boolean; numaCpus?: Record<number, string> } = {}): void {
  // Two NUMA nodes of 16 CPUs each (with their hyperthreads), unless told otherwise.
  for (const [node, list] of Object.entries(opts.numaCpus ?? { 0: "0-15,32-47", 1: "16-31,48-63" })) {
    mkdirSync(join(root, "devices/system/node", `node${node}`), { recursive: true });
    writeFileSync(join(root, "devices/system/node", `node${node}`, "cpulist"), `${list}\n`);
  }
  const drivers = new Set(devices.flatMap((d) => (d.driver ? [d.driver] : [])));
  if (opts.vfioLoaded ?? true) drivers.add("vfio-pci");
  for (const drv of drivers) mkdirSync(join(root, "bus/pci/drivers", drv), { recursive: true });
  writeFileSync(join(root, "bus/pci/drivers_probe"), "");
  for (const d of devices) {
    const dir = join(root, "bus/pci/devices", d.address);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "vendor"), `${d.vendor}\n`);
    writeFileSync(join(dir, "device"), `${d.device}\n`);
    writeFileSync(join(dir, "class"), `${d.class}\n`);
    writeFileSync(join(dir, "numa_node"), `${d.numaNode}\n`);
    writeFileSync(join(dir, "boot_vga"), d.bootVga ? "1\n" : "0\n");
    writeFileSync(join(dir, "driver_override"), "(null)\n");
    if (d.driver) symlinkSync(join(root, "bus/pci/drivers", d.driver), join(dir, "driver"));
    if (d.iommuGroup !== null) {
      const groupDir = join(root, "kernel/iommu_groups", String(d.iommuGroup));
      mkdirSync(join(groupDir, "devices"), { recursive: true });
      writeFileSync(join(groupDir, "devices", d.address), "");
      if (!existsSync(join(dir, "iommu_group"))) symlinkSync(groupDir, join(dir, "iommu_group"));
    }
  }
}

/**
 * sysfs with a kernel behind it: writes are recorded, `driver/unbind` unbinds, `drivers_probe` binds
 * the device to its `driver_override` or else back to the driver it was found with.
 */
export class FakeKernelSysfs extends PciSysfs {
  readonly writes: Array<{ path: string; value: string }> = [];
  private readonly hostDrivers = new Map<string, string | null>();

  constructor(root: string, devices: readonly FakePciDevice[]) {
    super(root);
    for (const d of devices) this.hostDrivers.set(d.address, d.driver === "vfio-pci" ? null : d.driver);
  }

  override async write(path: string, value: string): Promise<void> {
    this.writes.push({ path, value });
    const m = /^bus\/pci\/devices\/([^/]+)\/(driver_override|driver\/unbind)$/.exec(path);
    if (m?.[2] === "driver_override") return writeFileSync(join(this.root, path), value.trim() === "" ? "(null)\n" : `${value}\n`);
    if (m?.[2] === "driver/unbind") return rmSync(join(this.device(m[1]!), "driver"), { force: true });
    if (path === "bus/pci/drivers_probe") {
      const dir = this.device(value);
      if (existsSync(join(dir, "driver"))) return;
      const override = readFileSync(join(dir, "driver_override"), "utf8").trim();
      const driver = override !== "(null)" ? override : this.hostDrivers.get(value);
      if (driver) symlinkSync(join(this.root, "bus/pci/drivers", driver), join(dir, "driver"));
      return;
    }
    throw new Error(`fake kernel: unexpected write to ${path}`);
  }

  /** The driver a device is bound to now (read back from the tree). */
  boundTo(address: string): string | null {
    try {
      return basename(readlinkSync(join(this.device(address), "driver")));
    } catch {
      return null;
    }
  }
}
