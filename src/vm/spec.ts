import type { LanAttachment } from "../network/lan/model.js";
import type { IoLimits } from "./io-limits.js";

/**
 * What a VM is, in host terms, as stored with it. Both faces (host API and DBC API) map their
 * requests onto this one shape; the hypervisor's QemuSpec is derived from it at each start.
 */
export interface PortForward {
  proto: "tcp" | "udp";
  hostPort: number;
  guestPort: number;
}

export interface VmPorts {
  /** Host port forwarded to the guest's 22. */
  ssh: number | null;
  /** Host port forwarded to the guest's 3389. */
  rdp: number | null;
  /** Host TCP port of the VM's VNC server. */
  vnc: number;
  custom: PortForward[];
}

export interface VmSpec {
  imageName: string;
  /** vCPUs = cores × threads, one socket. */
  cpu: { cores: number; threads: number };
  memoryMiB: number;
  /** Size of the data disk vdb, or null for none (or for `dataFileName`). */
  dataDiskBytes: number | null;
  /** An existing file in the data-files folder used as vdb (DBC's data_file_name). */
  dataFileName: string | null;
  /**
   * The data file's format, read once when the VM was made and given to QEMU ever after: probing it
   * at each boot would let a guest turn its raw disk into a qcow2 of its choosing. Absent: qcow2.
   */
  dataFileFormat?: "qcow2" | "raw";
  biosMode: "legacy" | "uefi";
  os: "linux" | "windows";
  ports: VmPorts;
  gpuCount: number;
  /** The operator's note from seed 000. Kept and shown, never executed. */
  startCommand: string;
  desc: string;
  loginUser: string;
  /** Secrets: shown only to the VM's owner, never logged. */
  loginPassword: string;
  vncPassword: string;
  multicast: string[];
  networkName: string | null;
  /** The renter's security group as DBC's `network_filters` strings, normalized (network/security-group.ts). Absent: none. */
  networkFilters?: string[];
  /** Its NIC on a LAN network of the group (network/lan), as the master gave it. Absent or null: none. */
  lan?: LanAttachment | null;
  /** An address of the operator's pool mapped 1:1 to the VM (bridged networking). Absent or null: none. */
  publicIp?: string | null;
  /** Caps on its disk I/O and network its renter's grant set (vm/io-limits.ts). Absent: the operator's defaults. */
  io?: IoLimits;
  /** Data disks added after creation (`disk/add`): `vdc`, `vdd`, … each `<name>.qcow2` in the VM's folder. Absent: none. */
  extraDisks?: ExtraDisk[];
}

/** A data disk added to a VM after its creation. */
export interface ExtraDisk {
  /** Guest device name: `vdc`, `vdd`, … */
  name: string;
  /** Its virtual size (what the guest sees). */
  sizeBytes: number;
}

/** One data disk of a VM as the disk calls see it. */
export interface DataDiskView {
  name: string;
  /** Null: an operator's data file whose size is read from the file. */
  sizeBytes: number | null;
  /** The operator's data file (`data_file_name`): never resized or deleted by batu. */
  external: boolean;
}

/** A VM's data disks in guest order: vdb (a new disk, or the operator's data file), then the ones added. */
export function dataDisksOf(spec: VmSpec): DataDiskView[] {
  const vdb: DataDiskView[] = spec.dataFileName
    ? [{ name: "vdb", sizeBytes: null, external: true }]
    : spec.dataDiskBytes
      ? [{ name: "vdb", sizeBytes: spec.dataDiskBytes, external: false }]
      : [];
  return [...vdb, ...(spec.extraDisks ?? []).map((d) => ({ name: d.name, sizeBytes: d.sizeBytes, external: false }))];
}

export const vcpus = (spec: Pick<VmSpec, "cpu">): number => spec.cpu.cores * spec.cpu.threads;

/** The host forwards of a spec: ssh to the guest's 22, rdp to its 3389, then the custom ones. */
export function forwardsOf(spec: Pick<VmSpec, "ports">): PortForward[] {
  return [
    ...(spec.ports.ssh !== null ? [{ proto: "tcp" as const, hostPort: spec.ports.ssh, guestPort: 22 }] : []),
    ...(spec.ports.rdp !== null ? [{ proto: "tcp" as const, hostPort: spec.ports.rdp, guestPort: 3389 }] : []),
    ...spec.ports.custom,
  ];
}

/** Port kinds as reserved in the store. */
export type PortKind = "ssh" | "rdp" | "vnc" | "custom";

/** `spec` with data disk `name` at `sizeBytes`. */
export function withDiskSize(spec: VmSpec, name: string, sizeBytes: number): VmSpec {
  if (name === "vdb" && spec.dataDiskBytes) return { ...spec, dataDiskBytes: sizeBytes };
  return { ...spec, extraDisks: (spec.extraDisks ?? []).map((d) => (d.name === name ? { ...d, sizeBytes } : d)) };
}

/** `spec` with data disk `name` at `sizeBytes`: resized when it has one, added (in guest order) when not. */
export function withDisk(spec: VmSpec, name: string, sizeBytes: number): VmSpec {
  if (dataDisksOf(spec).some((d) => d.name === name)) return withDiskSize(spec, name, sizeBytes);
  const extraDisks = [...(spec.extraDisks ?? []), { name, sizeBytes }].sort((a, b) => a.name.localeCompare(b.name));
  return { ...spec, extraDisks };
}

/** `spec` without data disk `name`. */
export function withoutDisk(spec: VmSpec, name: string): VmSpec {
  if (name === "vdb" && (spec.dataDiskBytes || spec.dataFileName)) {
    const { dataFileFormat: _format, ...rest } = spec;
    return { ...rest, dataDiskBytes: null, dataFileName: null };
  }
  return { ...spec, extraDisks: (spec.extraDisks ?? []).filter((d) => d.name !== name) };
}
