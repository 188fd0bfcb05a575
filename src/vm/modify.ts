import type { HostForward } from "../hypervisor/qemu/spec.js";
import { hostForwardsOf } from "./qemu-spec.js";
import type { PortForward, VmSpec } from "./spec.js";

/** A change to a VM's ports or size (DBC's `tasks/modify`). Undefined: unchanged. */
export interface VmModify {
  sshPort?: number;
  rdpPort?: number;
  vncPort?: number;
  customPorts?: PortForward[];
  cores?: number;
  memoryMiB?: number;
  gpuCount?: number;
  /** New security group (normalized strings); [] removes it. */
  networkFilters?: string[];
  /** New public IP; null removes it. */
  publicIp?: string | null;
}

/**
 * The spec after `change`, and whether part of it waits for the VM's next boot (as DBC says: a new
 * VNC port, CPU, memory or GPU count; ports forwarded to the guest change at once).
 */
export function applyModify(spec: VmSpec, change: VmModify): { next: VmSpec; nextBoot: boolean } {
  const next: VmSpec = structuredClone(spec);
  if (change.sshPort !== undefined) next.ports.ssh = change.sshPort;
  if (change.rdpPort !== undefined) next.ports.rdp = change.rdpPort;
  if (change.customPorts !== undefined) next.ports.custom = change.customPorts;
  if (change.vncPort !== undefined) next.ports.vnc = change.vncPort;
  if (change.cores !== undefined) next.cpu = { cores: change.cores, threads: 1 };
  if (change.memoryMiB !== undefined) next.memoryMiB = change.memoryMiB;
  if (change.gpuCount !== undefined) next.gpuCount = change.gpuCount;
  if (change.networkFilters !== undefined) next.networkFilters = change.networkFilters;
  if (change.publicIp !== undefined) next.publicIp = change.publicIp;
  const nextBoot =
    next.ports.vnc !== spec.ports.vnc ||
    next.cpu.cores * next.cpu.threads !== spec.cpu.cores * spec.cpu.threads ||
    next.memoryMiB !== spec.memoryMiB ||
    next.gpuCount !== spec.gpuCount;
  return { next, nextBoot };
}

/** The host forwards a running VM must drop and gain to go from `before`'s ports to `after`'s. Pure. */
export function forwardChange(before: VmSpec, after: VmSpec, hostAddr: string): { remove: HostForward[]; add: HostForward[] } {
  return forwardsDiff(hostForwardsOf(before, hostAddr), hostForwardsOf(after, hostAddr));
}

const key = (f: HostForward) => `${f.proto}:${f.hostAddr}:${f.hostPort}:${f.guestPort}`;

/** The forwards to drop and to gain to go from the forwards `have` to `want`. Pure. */
export function forwardsDiff(have: readonly HostForward[], want: readonly HostForward[]): { remove: HostForward[]; add: HostForward[] } {
  const wanted = new Set(want.map(key));
  const had = new Set(have.map(key));
  return { remove: have.filter((f) => !wanted.has(key(f))), add: want.filter((f) => !had.has(key(f))) };
}
