import {
  PortAllocator,
  PortRangeExhaustedError,
  PortTakenError,
  type PortRequest,
  type SpecificPortRequest,
} from "../network/port-allocator.js";
import { portConflictMessage, type Protocol } from "../network/port-spec.js";
import type { VmCreateRequest } from "./create-request.js";
import { VmConflictError, VmResourceError } from "./errors.js";
import type { VmPortRow, VmRepo } from "./repo.js";
import type { PortKind, VmSpec } from "./spec.js";

/** The ranges host ports are drawn from when a request names none. */
export type PortRangeKind = "forward" | "vnc";

/** A host port a VM holds, and what it is for. */
export interface ReservedPort {
  port: number;
  proto: Protocol;
  kind: PortKind;
}

type LabelledRequest = PortRequest<PortRangeKind> & { label: PortKind };

/** Which face's words a refusal is in: DBC's `tasks/start` (and seed 000's add) or `tasks/modify`. */
type Face = "create" | "modify";

/**
 * The host ports of VMs, in the one place that keeps the allocator's memory and the store's
 * `vm_ports` rows in step: reserve (all or nothing, mapped to the field the user named), release,
 * persist, and restore at agent start. No two VMs ever hold the same port.
 */
export class VmPortReservations {
  constructor(
    private readonly allocator: PortAllocator<PortRangeKind>,
    private readonly repo: VmRepo,
  ) {}

  /** At agent start, before any VM is adopted: the reservations the store recorded. */
  restore(): void {
    this.allocator.load(
      this.repo.ports().map((p) => ({ owner: p.vmId, port: p.port, proto: p.proto, kind: p.kind === "vnc" ? "vnc" : "forward", label: p.kind })),
    );
  }

  /**
   * A new VM's ports: the ones it asks for, and picks for ssh (and rdp on Windows) and VNC left
   * open. Held in memory until `release`; the caller records them with the VM (`VmRepo.insert`, one
   * transaction). Throws VmConflictError naming the field, VmResourceError when a range is used up.
   */
  async reserveNew(id: string, req: VmCreateRequest): Promise<ReservedPort[]> {
    const requests: LabelledRequest[] = [];
    if (req.sshPort !== null) requests.push(req.sshPort === undefined ? { kind: "forward", label: "ssh" } : { port: req.sshPort, label: "ssh" });
    if (req.rdpPort !== null && req.rdpPort !== undefined) requests.push({ port: req.rdpPort, label: "rdp" });
    else if (req.rdpPort === undefined && req.os === "windows") requests.push({ kind: "forward", label: "rdp" });
    requests.push(req.vncPort === undefined ? { kind: "vnc", label: "vnc" } : { port: req.vncPort, label: "vnc" });
    for (const f of req.customPorts) requests.push({ port: f.hostPort, proto: f.proto, label: "custom" });
    const got = await this.reserve(id, requests, "create");
    return got.map((r, i) => ({ port: r.port, proto: r.proto, kind: requests[i]!.label }));
  }

  /**
   * Moves VM `id` from the ports of `from` to those of `to`: the new ones reserved (all or nothing),
   * then `apply` (re-pointing a running VM's forwards), then the ones it no longer uses released,
   * except `keep` (the VNC port a running VM listens on until its next boot), and the result recorded
   * with `to` as the VM's spec, in one transaction. If `apply` fails, the VM keeps the ports of `from`
   * (and its spec). Throws VmConflictError in `tasks/modify`'s words.
   */
  async change(
    id: string,
    move: { from: VmSpec; to: VmSpec; keep?: ReadonlyArray<{ port: number; proto: Protocol }> },
    apply: () => Promise<void>,
  ): Promise<void> {
    await this.reserve(id, specRequests(move.to), "modify");
    try {
      await apply();
    } catch (e) {
      this.settle(id, move.from, []);
      throw e;
    }
    this.settle(id, move.to, move.keep ?? [], { recordSpec: true });
  }

  /** Releases what VM `id` holds beyond the ports of `spec` and `keep`, and records the rest (and `spec`, if asked). */
  private settle(id: string, spec: VmSpec, keep: ReadonlyArray<{ port: number; proto: Protocol }>, opts: { recordSpec?: boolean } = {}): void {
    const wanted = new Map<string, PortKind>();
    for (const r of specRequests(spec)) wanted.set(portKey(r.port, r.proto ?? "tcp"), r.label);
    const kept = new Set(keep.map((k) => portKey(k.port, k.proto)));
    const rows: Array<Omit<VmPortRow, "vmId">> = [];
    for (const r of this.allocator.owned(id)) {
      const k = portKey(r.port, r.proto);
      const kind = wanted.get(k) ?? (kept.has(k) ? ((r.label as PortKind | undefined) ?? "custom") : undefined);
      if (kind === undefined) this.allocator.releasePort(id, r.port, r.proto);
      else rows.push({ port: r.port, proto: r.proto, kind });
    }
    this.repo.replacePorts(id, rows, opts.recordSpec ? spec : undefined);
  }

  /**
   * Frees what VM `id` holds beyond its spec's ports: the old VNC port a modify kept while the VM's
   * QEMU listened on it, once that QEMU is gone.
   */
  trimTo(id: string, spec: VmSpec): void {
    this.settle(id, spec, []);
  }

  /** Frees every port of VM `id`, in memory and in the store. */
  release(id: string): void {
    this.allocator.release(id);
    this.repo.replacePorts(id, []);
  }

  private async reserve(id: string, requests: LabelledRequest[], face: Face) {
    try {
      return await this.allocator.reserve(id, requests);
    } catch (e) {
      if (e instanceof PortTakenError) {
        const label = requests.find((r) => "port" in r && r.port === e.port)?.label ?? "custom";
        throw new VmConflictError(refusal(face, label, e));
      }
      if (e instanceof PortRangeExhaustedError) throw new VmResourceError("ports", e.message);
      throw e;
    }
  }
}

/** The ports a spec holds, as requests for exactly those. */
function specRequests(spec: VmSpec): Array<SpecificPortRequest & { label: PortKind }> {
  return [
    ...(spec.ports.ssh !== null ? [{ port: spec.ports.ssh, label: "ssh" as const }] : []),
    ...(spec.ports.rdp !== null ? [{ port: spec.ports.rdp, label: "rdp" as const }] : []),
    { port: spec.ports.vnc, label: "vnc" as const },
    ...spec.ports.custom.map((f) => ({ port: f.hostPort, proto: f.proto, label: "custom" as const })),
  ];
}

/** A taken port in the words of the face that asked: DBC's own for each. */
function refusal(face: Face, label: PortKind, e: PortTakenError): string {
  if (face === "modify") return `new_${label}_port ${e.port} has been used!`;
  const onHost = e.by === "host" ? " (in use on the host)" : "";
  if (label === "custom") return `custom_port: ${e.message}${onHost}`;
  return `${portConflictMessage(`${label}_port`, e.port)}${onHost}`;
}

const portKey = (port: number, proto: Protocol) => `${proto}/${port}`;
