import { macFor } from "../network/mac.js";
import type { QemuSpec, DiskSpec, GpuSpec, HostForward, NicSpec } from "../hypervisor/qemu/spec.js";
import { DEBIAN_OVMF } from "../hypervisor/qemu/spec.js";
import type { ResolvedImage } from "./images.js";
import { forwardsOf, type VmSpec } from "./spec.js";

export { macFor };

/** Spare root ports of a q35 VM (one with GPUs): that many data disks can be hot-plugged between boots. */
export const Q35_HOTPLUG_PORTS = 8;

/** The id of a VM's user-mode NIC, the one its host forwards are on. */
export const USER_NIC_ID = "net0";

/** The host forwards of a spec, listening on `hostAddr`. */
export function hostForwardsOf(spec: Pick<VmSpec, "ports">, hostAddr: string): HostForward[] {
  return forwardsOf(spec).map((f) => ({ ...f, hostAddr }));
}

export interface HostSide {
  runDir: string;
  accel: "kvm" | "tcg";
  cpuModel: string;
  disks: DiskSpec[];
  /** The VM's NICs on the host's network (guest-network.ts); its multicast NICs follow them. */
  nics: NicSpec[];
  /** Appended to a kernel-booted image's command line. */
  kernelArgs: string[];
  /** The address VNC listens on. */
  forwardHost: string;
  vncPasswordFile: string;
  /** fw_cfg files handed to the guest: its password and hostname. */
  fwCfg: Array<{ name: string; file: string }>;
  ovmfVarsPath: string;
  /** A cloud-init NoCloud seed written for this boot (images that run cloud-init). */
  seedDisk?: string;
  /** GPUs passed through (vfio), given for this boot. */
  gpus?: GpuSpec[];
}

/** VM (wire-neutral) + image + host resources → what QEMU runs. Pure. */
export function toQemuSpec(vmId: string, spec: VmSpec, image: ResolvedImage, host: HostSide): QemuSpec {
  return {
    name: vmId,
    runDir: host.runDir,
    accel: host.accel,
    cpuModel: host.cpuModel,
    // GPU drivers expect PCI Express: a VM with GPUs is a q35 machine (DBC's Windows VMs are too).
    machine: host.gpus?.length ? "q35" : "pc",
    cpu: { sockets: 1, cores: spec.cpu.cores, threads: spec.cpu.threads },
    memoryMiB: spec.memoryMiB,
    firmware:
      spec.biosMode === "uefi"
        ? { kind: "uefi", codePath: DEBIAN_OVMF.codePath, varsPath: host.ovmfVarsPath }
        : { kind: "bios" },
    ...(image.kernel ? { kernel: { ...image.kernel, cmdline: [image.kernel.cmdline, ...host.kernelArgs].join(" ") } } : {}),
    disks: host.disks,
    nics: [
      ...host.nics,
      ...spec.multicast.map((group, i) => ({ kind: "mcast" as const, id: `mc${i}`, mac: macFor(vmId, i + 1), group })),
    ],
    vnc: { listenAddr: host.forwardHost, port: spec.ports.vnc, passwordFile: host.vncPasswordFile },
    fwCfg: host.fwCfg,
    guestAgent: true,
    ...(host.seedDisk ? { seedDisk: host.seedDisk } : {}),
    // q35's root bus takes no hot-plugged device: spare root ports for the disks `disk/add` plugs live.
    ...(host.gpus?.length ? { gpus: host.gpus, hotplugPorts: Q35_HOTPLUG_PORTS } : {}),
  };
}
