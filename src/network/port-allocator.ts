import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import type { PortRange, Protocol } from "./port-spec.js";

/** Ask for this exact host port. */
export interface SpecificPortRequest {
  port: number;
  proto?: Protocol;
  /** Free text the caller uses to find its answer, e.g. `ssh`, `vnc`, `custom`. */
  label?: string;
}

/** Ask for any free port of the range named `kind`. */
export interface AnyPortRequest<K extends string> {
  kind: K;
  proto?: Protocol;
  label?: string;
}

export type PortRequest<K extends string> = SpecificPortRequest | AnyPortRequest<K>;

/** A host port held for an owner (a VM id). This is what the store keeps and `load()` restores. */
export interface PortReservation<K extends string = string> {
  owner: string;
  port: number;
  proto: Protocol;
  /** The range it was drawn from, or null for a specific request. */
  kind: K | null;
  label?: string;
}

/** Whether a port can be bound on the host right now: resolves true when free. */
export type PortProbe = (port: number, proto: Protocol) => Promise<boolean>;

/** The port is held by another VM (`by: "vm"`, `owner` says which) or bound by something on the host. */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    readonly proto: Protocol,
    readonly by: "vm" | "host",
    readonly owner?: string,
  ) {
    super(by === "vm" ? `${proto} port ${port} is held by vm ${owner ?? "?"}` : `${proto} port ${port} is in use on the host`);
    this.name = "PortTakenError";
  }
}

/** Every port of a range is held or busy. */
export class PortRangeExhaustedError extends Error {
  constructor(
    readonly kind: string,
    readonly proto: Protocol,
    readonly range: PortRange,
  ) {
    super(`no free ${proto} port left in range ${kind} [${range.min}, ${range.max}]`);
    this.name = "PortRangeExhaustedError";
  }
}

/** The owner was released while its reservation was still being probed. */
export class PortReservationCancelledError extends Error {
  constructor(readonly owner: string) {
    super(`ports of ${owner} were released while being reserved`);
    this.name = "PortReservationCancelledError";
  }
}

/**
 * Tries to bind `0.0.0.0:port` (a TCP server or a UDP socket) and closes it at once. Any bind error
 * (EADDRINUSE, EACCES for ports below 1024 without privilege) means QEMU could not bind it either.
 */
export function probeHostPort(port: number, proto: Protocol, host = "0.0.0.0"): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === "tcp") {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
    } else {
      const socket = createSocket({ type: "udp4" });
      socket.once("error", () => {
        socket.close();
        resolve(false);
      });
      socket.bind({ port, address: host, exclusive: true }, () => socket.close(() => resolve(true)));
    }
  });
}

export interface PortAllocatorOptions<K extends string> {
  /** Named ranges that "any port" requests draw from, e.g. `{ forward: {min: 20000, max: 29999}, vnc: {min: 5900, max: 6999} }`. */
  ranges: Record<K, PortRange>;
  /** Host check for a newly reserved port; default `probeHostPort`. */
  probe?: PortProbe;
  /** How long a port found bound on the host is skipped by "any" picks; default 30 s. */
  hostBusyMemoryMs?: number;
}

const key = (port: number, proto: Protocol): string => `${proto}/${port}`;

/**
 * Hands out host ports to owners. A port is marked held synchronously, before any await, so
 * concurrent `reserve()` calls never get the same port; each new port is then probed on the host
 * and the whole call is undone if one specific port turns out bound (an "any" port is replaced).
 */
export class PortAllocator<K extends string = string> {
  private readonly held = new Map<string, PortReservation<K>>();
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly hostBusyUntil = new Map<string, number>();
  private readonly cursors = new Map<K, number>();
  private readonly probe: PortProbe;
  private readonly hostBusyMemoryMs: number;

  constructor(private readonly opts: PortAllocatorOptions<K>) {
    for (const [kind, r] of Object.entries(opts.ranges) as Array<[K, PortRange]>) {
      if (!isPort(r.min) || !isPort(r.max) || r.min > r.max) throw new RangeError(`bad port range ${kind}: [${r.min}, ${r.max}]`);
      this.cursors.set(kind, r.min);
    }
    this.probe = opts.probe ?? probeHostPort;
    this.hostBusyMemoryMs = opts.hostBusyMemoryMs ?? 30_000;
  }

  /**
   * Reserves every request for `owner`, all or nothing; answers in request order. A port `owner`
   * already holds is returned as it is, without a probe (its own QEMU may be bound to it).
   * Throws PortTakenError, PortRangeExhaustedError or PortReservationCancelledError.
   */
  async reserve(owner: string, requests: ReadonlyArray<PortRequest<K>>): Promise<Array<PortReservation<K>>> {
    const results: Array<PortReservation<K>> = [];
    const taken: Array<PortReservation<K>> = [];
    const toProbe: number[] = [];
    const asked = new Set<string>();
    try {
      // Phase 1, synchronous: mark every port held before the first await; specific ports first,
      // so "any" picks cannot take a port this same call asks for by number.
      requests.forEach((req, i) => {
        const proto = req.proto ?? "tcp";
        if ("port" in req) {
          if (!isPort(req.port)) throw new RangeError(`not a port: ${req.port}`);
          const k = key(req.port, proto);
          const current = this.held.get(k);
          if ((current && current.owner !== owner) || asked.has(k)) {
            throw new PortTakenError(req.port, proto, "vm", current?.owner ?? owner);
          }
          asked.add(k);
          if (current) {
            results[i] = current;
            return;
          }
          results[i] = this.take({ owner, port: req.port, proto, kind: null, ...label(req) });
          taken.push(results[i]!);
          toProbe.push(i);
        }
      });
      requests.forEach((req, i) => {
        if ("port" in req) return;
        results[i] = this.take(this.pick(owner, req.kind, req.proto ?? "tcp", label(req)));
        taken.push(results[i]!);
        toProbe.push(i);
      });

      // Phase 2: probe the new ports; replace busy "any" ports until all are free on the host.
      let round = toProbe;
      while (round.length > 0) {
        const free = await Promise.all(round.map((i) => this.probe(results[i]!.port, results[i]!.proto)));
        const next: number[] = [];
        round.forEach((i, j) => {
          if (free[j]) return;
          const r = results[i]!;
          this.hostBusyUntil.set(key(r.port, r.proto), Date.now() + this.hostBusyMemoryMs);
          if (r.kind === null) throw new PortTakenError(r.port, r.proto, "host");
          this.untake(r);
          const again = this.take(this.pick(owner, r.kind, r.proto, label(r)));
          taken.push(again);
          results[i] = again;
          next.push(i);
        });
        round = next;
      }
      if (results.some((r) => this.held.get(key(r.port, r.proto)) !== r)) throw new PortReservationCancelledError(owner);
      return results;
    } catch (e) {
      for (const r of taken) this.untake(r);
      throw e;
    }
  }

  /** Frees every port of `owner`; returns what was freed. */
  release(owner: string): Array<PortReservation<K>> {
    const out = this.owned(owner);
    for (const r of out) this.untake(r);
    return out;
  }

  /** Frees one port of `owner` (e.g. after `new_ssh_port`); false when `owner` did not hold it. */
  releasePort(owner: string, port: number, proto: Protocol = "tcp"): boolean {
    const r = this.held.get(key(port, proto));
    if (!r || r.owner !== owner) return false;
    this.untake(r);
    return true;
  }

  /** Restores reservations kept in the store, at start, without probing (adopted VMs hold them). */
  load(entries: ReadonlyArray<PortReservation<K>>): void {
    for (const e of entries) {
      if (!isPort(e.port)) throw new RangeError(`not a port: ${e.port}`);
      const current = this.held.get(key(e.port, e.proto));
      if (current && current.owner !== e.owner) throw new PortTakenError(e.port, e.proto, "vm", current.owner);
      if (!current) this.take({ ...e });
    }
  }

  /** The ports `owner` holds, ordered by protocol and port. */
  owned(owner: string): Array<PortReservation<K>> {
    const keys = this.byOwner.get(owner) ?? new Set<string>();
    return [...keys]
      .map((k) => this.held.get(k)!)
      .sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port);
  }

  /** The owner holding a port, if any. */
  holder(port: number, proto: Protocol = "tcp"): string | undefined {
    return this.held.get(key(port, proto))?.owner;
  }

  private take(r: PortReservation<K>): PortReservation<K> {
    const k = key(r.port, r.proto);
    this.held.set(k, r);
    let keys = this.byOwner.get(r.owner);
    if (!keys) this.byOwner.set(r.owner, (keys = new Set()));
    keys.add(k);
    return r;
  }

  private untake(r: PortReservation<K>): void {
    const k = key(r.port, r.proto);
    if (this.held.get(k) !== r) return; // already released, or someone else's now
    this.held.delete(k);
    const keys = this.byOwner.get(r.owner);
    keys?.delete(k);
    if (keys?.size === 0) this.byOwner.delete(r.owner);
  }

  /** Next port of the range not held and not recently found bound on the host, round-robin. */
  private pick(owner: string, kind: K, proto: Protocol, lbl: { label?: string }): PortReservation<K> {
    const range = this.opts.ranges[kind];
    if (!range) throw new RangeError(`unknown port range: ${kind}`);
    const size = range.max - range.min + 1;
    const start = this.cursors.get(kind) ?? range.min;
    const now = Date.now();
    for (let n = 0; n < size; n++) {
      const port = range.min + ((start - range.min + n) % size);
      const k = key(port, proto);
      if (this.held.has(k)) continue;
      const busyUntil = this.hostBusyUntil.get(k);
      if (busyUntil !== undefined) {
        if (busyUntil > now) continue;
        this.hostBusyUntil.delete(k);
      }
      this.cursors.set(kind, port + 1 > range.max ? range.min : port + 1);
      return { owner, port, proto, kind, ...lbl };
    }
    throw new PortRangeExhaustedError(kind, proto, range);
  }
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function label(x: { label?: string }): { label?: string } {
  return x.label === undefined ? {} : { label: x.label };
}
