import type { PciSysfs } from "./sysfs.js";

/** A device could not be handed to vfio-pci (or back): names it and why. */
export class VfioError extends Error {}

/**
 * Binds each device to vfio-pci, the kernel's way: `driver_override`, unbind from its driver, then
 * probe (the override makes vfio-pci take it). Nothing is written for a device bound already.
 */
export async function bindToVfio(sysfs: PciSysfs, addresses: readonly string[]): Promise<void> {
  const touched: string[] = [];
  try {
    for (const address of addresses) {
      if ((await sysfs.driver(address)) === "vfio-pci") continue;
      touched.push(address);
      await sysfs.write(`bus/pci/devices/${address}/driver_override`, "vfio-pci");
      const driver = await sysfs.driver(address);
      if (driver !== null) await sysfs.write(`bus/pci/devices/${address}/driver/unbind`, address);
      await sysfs.write("bus/pci/drivers_probe", address);
      const now = await sysfs.driver(address);
      if (now !== "vfio-pci") throw new VfioError(`${address} did not bind to vfio-pci (bound to ${now ?? "no driver"})`);
    }
  } catch (e) {
    // All or nothing: what this call moved goes back to the host (a GPU is never left half bound).
    await releaseFromVfio(sysfs, touched, { clearOverride: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Gives devices back to the host: the override cleared, unbound from vfio-pci and probed again, so
 * the host's own driver (nvidia, amdgpu...) takes them. Devices not on vfio-pci are left alone.
 */
export async function releaseFromVfio(sysfs: PciSysfs, addresses: readonly string[], opts: { clearOverride?: boolean } = {}): Promise<void> {
  for (const address of addresses) {
    const driver = await sysfs.driver(address);
    if (driver !== "vfio-pci" && !opts.clearOverride) continue;
    await sysfs.write(`bus/pci/devices/${address}/driver_override`, "\n");
    if (driver === "vfio-pci") await sysfs.write(`bus/pci/devices/${address}/driver/unbind`, address);
    if (driver === null || driver === "vfio-pci") await sysfs.write("bus/pci/drivers_probe", address);
  }
}
