import { listGpus, type GpuDevice } from "../host/gpu-inventory.js";
import type { PciSysfs } from "./sysfs.js";

/**
 * What passes through to a VM as one GPU: function 0 of a display controller's slot with every
 * other function of the slot (its audio, USB-C controllers), as DBC passes them; all of them share
 * one IOMMU group (with at most PCI bridges besides), or the GPU cannot be passed through safely.
 */
export interface GpuUnit {
  /** Function 0 of the slot, e.g. `0000:1b:00.0`: the GPU's id. */
  address: string;
  /** Every function of the slot, function 0 first. */
  functions: string[];
  vendor: string;
  model: string;
  memoryMiB: number | null;
  numaNode: number | null;
  iommuGroup: number | null;
  /** Why it cannot be passed through on this host, or null when it can. */
  unavailable: string | null;
}

/**
 * The vendors whose display controllers are renters' GPUs (DBC counts NVIDIA's): a server's other
 * display controllers are its BMC's or the board's (ASPEED, Matrox, Intel), the operator's console.
 */
const DISCRETE_VENDORS = new Set(["10de", "1002"]);

/** PCI classes a GPU's IOMMU group may hold besides the GPU's own slot: bridges (never passed through). */
const BRIDGE_CLASS = /^0x0604/;

const slotOf = (address: string) => address.slice(0, address.lastIndexOf("."));

/**
 * The host's GPUs as passthrough units, with why each one cannot be used where it cannot: the IOMMU
 * off, the host's boot display, an IOMMU group shared with devices outside the GPU's slot (they would
 * go to the guest too), or no vfio-pci driver. Sorted by address.
 */
export async function readGpuUnits(sysfs: PciSysfs, opts: { nvidiaSmi?: string | false } = {}): Promise<GpuUnit[]> {
  const gpus = await listGpus({ sysfsRoot: sysfs.root, nvidiaSmi: opts.nvidiaSmi ?? "nvidia-smi", onWarning: () => undefined }).catch(() => [] as GpuDevice[]);
  const all = await sysfs.devices();
  const vfio = await sysfs.hasVfioDriver();
  const units: GpuUnit[] = [];
  for (const gpu of gpus.filter((g) => g.pciAddress.endsWith(".0"))) {
    const slot = slotOf(gpu.pciAddress);
    const functions = all.filter((a) => slotOf(a) === slot).sort();
    const numa = Number(await sysfs.read(gpu.pciAddress, "numa_node"));
    const group = await sysfs.iommuGroup(gpu.pciAddress);
    let unavailable: string | null = null;
    if (!DISCRETE_VENDORS.has(gpu.vendorId)) unavailable = `not a GPU batu passes through (vendor ${gpu.vendorId}: a board's or BMC's display; NVIDIA and AMD GPUs are)`;
    else if (!group) unavailable = "the IOMMU is off (boot the host with intel_iommu=on or amd_iommu=on, and iommu=pt)";
    else if (gpu.bootVga) unavailable = "it is the host's boot display";
    else {
      const strangers: string[] = [];
      for (const d of group.devices) {
        if (functions.includes(d)) continue;
        const cls = (await sysfs.read(d, "class")) ?? "?";
        if (!BRIDGE_CLASS.test(cls)) strangers.push(`${d} (class ${cls})`);
      }
      if (strangers.length) unavailable = `its IOMMU group ${group.group} also holds ${strangers.join(", ")}, which would go to the guest too`;
      else if (!vfio) unavailable = "the vfio-pci driver is not loaded (modprobe vfio-pci)";
    }
    units.push({
      address: gpu.pciAddress,
      functions,
      vendor: gpu.vendorName ?? gpu.vendorId,
      model: gpu.model ?? `${gpu.vendorId}:${gpu.deviceId}`,
      memoryMiB: gpu.memoryTotalMiB ?? null,
      numaNode: Number.isInteger(numa) && numa >= 0 ? numa : null,
      iommuGroup: group?.group ?? null,
      unavailable,
    });
  }
  return units;
}
