import { PortAllocator, PortRangeExhaustedError, PortTakenError, type PortRequest } from "../network/port-allocator.js";
import { portConflictMessage } from "../network/port-spec.js";
import { newLoginPassword, type VmCreateRequest } from "./create-request.js";
import type { PortRangeKind } from "./service.js";
import { VmConflictError, VmResourceError } from "./errors.js";
import type { PortKind, VmSpec } from "./spec.js";

export interface ReservedPort {
  port: number;
  proto: "tcp" | "udp";
  kind: PortKind;
}

/** Reserves a new VM's host ports, all or nothing: the asked ones, and picks for ssh/rdp/vnc left open. */
export async function reservePorts(ports: PortAllocator<PortRangeKind>, id: string, req: VmCreateRequest): Promise<ReservedPort[]> {
  const requests: Array<PortRequest<PortRangeKind> & { label: PortKind }> = [];
  if (req.sshPort !== null) requests.push(req.sshPort === undefined ? { kind: "forward", label: "ssh" } : { port: req.sshPort, label: "ssh" });
  if (req.rdpPort !== null && req.rdpPort !== undefined) requests.push({ port: req.rdpPort, label: "rdp" });
  else if (req.rdpPort === undefined && req.os === "windows") requests.push({ kind: "forward", label: "rdp" });
  requests.push(req.vncPort === undefined ? { kind: "vnc", label: "vnc" } : { port: req.vncPort, label: "vnc" });
  for (const f of req.customPorts) requests.push({ port: f.hostPort, proto: f.proto, label: "custom" });
  try {
    const got = await ports.reserve(id, requests);
    return got.map((r, i) => ({ port: r.port, proto: r.proto, kind: requests[i]!.label }));
  } catch (e) {
    if (e instanceof PortTakenError) {
      const kind = requests.find((r) => "port" in r && r.port === e.port)?.label ?? "custom";
      const field = kind === "custom" ? "custom_port" : (`${kind}_port` as const);
      const msg = field === "custom_port" ? `custom_port: ${e.message}` : portConflictMessage(field, e.port);
      throw new VmConflictError(`${msg}${e.by === "host" ? " (in use on the host)" : ""}`);
    }
    if (e instanceof PortRangeExhaustedError) throw new VmResourceError("ports", e.message);
    throw e;
  }
}

/** The stored spec of a new VM: the request, its reserved ports, and fresh login secrets. */
export function specFrom(req: VmCreateRequest, ports: ReservedPort[], loginUser: string): VmSpec {
  const loginPassword = newLoginPassword();
  return {
    imageName: req.imageName,
    cpu: { cores: req.cores, threads: req.vcpus / req.cores },
    memoryMiB: Math.ceil(req.memoryBytes / 2 ** 20),
    dataDiskBytes: req.dataDiskBytes,
    dataFileName: req.dataFileName,
    biosMode: req.biosMode,
    os: req.os,
    ports: {
      ssh: ports.find((p) => p.kind === "ssh")?.port ?? null,
      rdp: ports.find((p) => p.kind === "rdp")?.port ?? null,
      vnc: ports.find((p) => p.kind === "vnc")!.port,
      custom: req.customPorts,
    },
    gpuCount: req.gpuCount,
    startCommand: req.startCommand,
    desc: req.desc,
    loginUser,
    loginPassword,
    // VNC reads only 8 bytes of a password; DBC shows the same truncation.
    vncPassword: loginPassword.slice(0, 8),
    multicast: req.multicast,
    networkName: req.networkName,
  };
}
