import { nicNetdevId } from "../hypervisor/qemu/spec.js";
import type { QmpClient } from "../hypervisor/qemu/qmp/client.js";
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
}

/** The host forwards of a spec, as slirp writes them. */
export function forwardsOf(spec: VmSpec): Array<PortForward> {
  return [
    ...(spec.ports.ssh !== null ? [{ proto: "tcp" as const, hostPort: spec.ports.ssh, guestPort: 22 }] : []),
    ...(spec.ports.rdp !== null ? [{ proto: "tcp" as const, hostPort: spec.ports.rdp, guestPort: 3389 }] : []),
    ...spec.ports.custom,
  ];
}

/** The spec after `change`, and whether a running VM needs a new boot to see all of it. */
export function applyModify(spec: VmSpec, change: VmModify): { next: VmSpec; nextBoot: boolean } {
  const next: VmSpec = structuredClone(spec);
  if (change.sshPort !== undefined) next.ports.ssh = change.sshPort;
  if (change.rdpPort !== undefined) next.ports.rdp = change.rdpPort;
  if (change.customPorts !== undefined) next.ports.custom = change.customPorts;
  if (change.vncPort !== undefined) next.ports.vnc = change.vncPort;
  if (change.cores !== undefined) next.cpu = { cores: change.cores, threads: 1 };
  if (change.memoryMiB !== undefined) next.memoryMiB = change.memoryMiB;
  if (change.gpuCount !== undefined) next.gpuCount = change.gpuCount;
  return { next, nextBoot: change.vncPort !== undefined && change.vncPort !== spec.ports.vnc };
}

const key = (f: PortForward) => `${f.proto}:${f.hostPort}:${f.guestPort}`;

/** Re-points a running VM's NAT forwards at once, over QMP (slirp's hostfwd_remove/hostfwd_add). */
export async function applyForwardsLive(qmp: QmpClient, hostAddr: string, before: PortForward[], after: PortForward[]): Promise<void> {
  const keep = new Set(after.map(key));
  const had = new Set(before.map(key));
  const netdev = nicNetdevId("net0");
  // HMP answers in text: hostfwd_add prints nothing on success, hostfwd_remove "... removed".
  const hmp = async (line: string, success: RegExp) => {
    const out = (await qmp.execute<string>("human-monitor-command", { "command-line": line })).trim();
    if (!success.test(out)) throw new Error(`${line.split(" ")[0]}: ${out}`);
  };
  for (const f of before) {
    if (!keep.has(key(f))) await hmp(`hostfwd_remove ${netdev} ${f.proto}:${hostAddr}:${f.hostPort}`, /removed$/);
  }
  for (const f of after) {
    if (!had.has(key(f))) await hmp(`hostfwd_add ${netdev} ${f.proto}:${hostAddr}:${f.hostPort}-:${f.guestPort}`, /^$/);
  }
}

