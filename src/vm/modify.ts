import type { HostForward } from "../hypervisor/qemu/spec.js";
import { forwardsOf, type PortForward, type VmSpec } from "./spec.js";

/** A change to a VM's ports or size (DBC's `tasks/modify`). Undefined: unchanged. */
export interface VmModify {
  sshPort?: number;
  rdpPort?: number;
  vncPort?: number;
  customPorts?: PortForward[];
  cores?: number;
  memoryMiB?: number;
  gpuCount?: number;
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
  const nextBoot =
    next.ports.vnc !== spec.ports.vnc ||
    next.cpu.cores * next.cpu.threads !== spec.cpu.cores * spec.cpu.threads ||
    next.memoryMiB !== spec.memoryMiB ||
    next.gpuCount !== spec.gpuCount;
  return { next, nextBoot };
}

const key = (f: PortForward) => `${f.proto}:${f.hostPort}:${f.guestPort}`;

/** The host forwards a running VM must drop and gain to go from `before`'s ports to `after`'s. Pure. */
export function forwardChange(before: VmSpec, after: VmSpec, hostAddr: string): { remove: HostForward[]; add: HostForward[] } {
  const had = forwardsOf(before);
  const wanted = forwardsOf(after);
  const keep = new Set(wanted.map(key));
  const old = new Set(had.map(key));
  return {
    remove: had.filter((f) => !keep.has(key(f))).map((f) => ({ ...f, hostAddr })),
    add: wanted.filter((f) => !old.has(key(f))).map((f) => ({ ...f, hostAddr })),
  };
}
