import { join } from "node:path";

/** How guest code runs: hardware virtualization, or QEMU's software emulator. */
export type Accel = "kvm" | "tcg";

/** QEMU machine type. The unversioned alias resolves to the newest version this QEMU knows. */
export type MachineType = "pc" | "q35";

/** Guest CPU topology; vCPUs = sockets * cores * threads. */
export interface CpuTopology {
  /** @example 1 */
  sockets: number;
  /** Cores per socket. @example 2 */
  cores: number;
  /** Threads per core. @example 2 */
  threads: number;
}

/** Guest firmware: SeaBIOS (QEMU's default) or OVMF. */
export type Firmware =
  | { kind: "bios" }
  | {
      kind: "uefi";
      /** Read-only OVMF code image. @example "/usr/share/OVMF/OVMF_CODE_4M.fd" */
      codePath: string;
      /** This VM's own writable copy of an OVMF vars template (never the shared template). */
      varsPath: string;
    };

/** Direct kernel boot, for images that carry their own kernel. */
export interface KernelBoot {
  /** @example "/var/lib/batu/images/demo/vmlinuz" */
  kernelPath: string;
  initrdPath?: string;
  /** @example "console=ttyS0 root=/dev/vda" */
  cmdline: string;
}

/** A virtio-blk disk. The first one is the boot disk (when there is no kernel). */
export interface DiskSpec {
  /** Guest-visible id, also the QEMU device id. @example "vda" */
  id: string;
  /** @example "/var/lib/batu/vms/t1/vda.qcow2" */
  path: string;
  format: "qcow2" | "raw";
}

/** The id prefix of a q35 machine's spare root ports, numbered from 0, where disks are hot-plugged. */
export const HOTPLUG_PORT_PREFIX = "hp";

/** A cap on a disk's I/O (QMP block_set_io_throttle); 0: no cap that way. Disks of one group share it. */
export interface DiskThrottle {
  /** Reads and writes per second. */
  iops: number;
  /** Bytes per second read and written. */
  bytesPerSec: number;
  group: string;
}

/** A slirp host forward: hostAddr:hostPort on the host reaches guestPort in the guest. */
export interface HostForward {
  proto: "tcp" | "udp";
  /** IPv4 address to listen on. @example "0.0.0.0" */
  hostAddr: string;
  /** @example 5684 */
  hostPort: number;
  /** @example 22 */
  guestPort: number;
}

interface NicBase {
  /** QEMU device id of the virtio-net NIC. @example "net0" */
  id: string;
  /** Unicast MAC. @example "52:54:00:12:34:56" */
  mac: string;
}

/** A virtio-net NIC and its backend. */
export type NicSpec =
  | (NicBase & { kind: "user"; hostForwards: HostForward[] })
  | (NicBase & { kind: "mcast"; /** @example "230.0.0.1:5558" */ group: string })
  | (NicBase & {
      kind: "tap";
      /** An existing tap device. @example "batu-t1-0" */
      ifname: string;
      /** The MTU the guest is told to use (virtio-net host_mtu), e.g. 1450 on a VXLAN. Absent: the guest's own. */
      mtu?: number;
    });

/** A VNC server with password authentication. */
export interface VncSpec {
  /** IPv4 address to listen on. @example "0.0.0.0" */
  listenAddr: string;
  /** Absolute TCP port, >= 5900. @example 5904 */
  port: number;
  /** File holding the password, no trailing newline; VNC uses only its first 8 bytes. */
  passwordFile: string;
}

/** A blob given to the guest through fw_cfg (read by the guest, never on the command line). */
export interface FwCfgEntry {
  /** Must start with "opt/"; at most 55 characters. @example "opt/batu/password" */
  name: string;
  /** Read once by QEMU at start; may be deleted afterwards. */
  file: string;
}

/** A host PCI function passed through with vfio-pci (already bound to vfio-pci). */
export interface GpuSpec {
  /** Function 0 of the GPU's slot. @example "0000:01:00.0" */
  pciAddress: string;
  /** The slot's other functions (audio, USB-C), passed through beside it. @example ["0000:01:00.1"] */
  functions?: string[];
  /** false: the ROM BAR hidden from the guest (DBC does so for Windows). */
  romBar?: boolean;
}

/** Everything QEMU needs to run one VM, in host terms. */
export interface QemuSpec {
  /** The VM id; QEMU's `-name guest=`. @example "t1a2b3" */
  name: string;
  /** Per-VM run folder: qmp.sock, qemu.pid, serial.log live here. Keep it short (unix socket paths < 108 bytes). */
  runDir: string;
  accel: Accel;
  /** @example "host" under KVM, "max" under TCG */
  cpuModel: string;
  machine: MachineType;
  cpu: CpuTopology;
  /** @example 1024 */
  memoryMiB: number;
  firmware: Firmware;
  kernel?: KernelBoot;
  disks: DiskSpec[];
  nics: NicSpec[];
  vnc?: VncSpec;
  fwCfg?: FwCfgEntry[];
  gpus?: GpuSpec[];
  /** q35 only: empty pcie-root-ports ("hp0", "hp1", ...: HOTPLUG_PORT_PREFIX) to hotplug devices into later. */
  hotplugPorts?: number;
  /**
   * A virtio-serial channel for the QEMU guest agent (`org.qemu.guest_agent.0`), served by QEMU on
   * the run dir's `qga.sock`: how batu asks the guest itself (change a password). Harmless to a guest
   * without an agent.
   */
  guestAgent?: boolean;
  /**
   * A read-only raw disk image on its own virtio-scsi controller (the guest's `sda`, never one of
   * the `vd*` names its data disks have): a cloud-init NoCloud seed.
   */
  seedDisk?: string;
}

/** The files QEMU keeps in a VM's run folder. */
export interface RunPaths {
  qmpSocket: string;
  pidFile: string;
  serialLog: string;
  guestAgentSocket: string;
}

export function runPaths(runDir: string): RunPaths {
  return {
    qmpSocket: join(runDir, "qmp.sock"),
    guestAgentSocket: join(runDir, "qga.sock"),
    pidFile: join(runDir, "qemu.pid"),
    serialLog: join(runDir, "serial.log"),
  };
}

/** QMP/block node name of a disk's format layer (for block_resize, query-blockstats, blockdev-del). */
export const diskNodeName = (diskId: string): string => `disk-${diskId}`;
/** Block node name of a disk's file (protocol) layer. */
export const diskFileNodeName = (diskId: string): string => `disk-${diskId}-file`;
/** The chardev of the guest agent's channel (QMP `query-chardev` tells whether the guest opened it). */
export const GUEST_AGENT_CHARDEV = "qga0";
/** QEMU netdev id of a NIC's backend. */
export const nicNetdevId = (nicId: string): string => `netdev-${nicId}`;

/** Debian's `ovmf` package: the 4 MiB build, the one Debian recommends (2 MiB files are legacy). */
export const DEBIAN_OVMF = {
  codePath: "/usr/share/OVMF/OVMF_CODE_4M.fd",
  varsTemplatePath: "/usr/share/OVMF/OVMF_VARS_4M.fd",
} as const;

/** TCG translation cache size: QEMU 7.2's default is 1 GiB of address space; 32 MiB saves ~20 MB RSS per VM. */
export const TCG_TB_SIZE_MIB = 32;
