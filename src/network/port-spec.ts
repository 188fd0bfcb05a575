/**
 * DBC's port fields, parsed and validated without I/O: `ssh_port`, `rdp_port`, `vnc_port` and the
 * `custom_port` list (`tcp,123`, `udp,111:222`, `tcp,333-444`, `udp,555-666:777-888`).
 */

export const Protocols = ["tcp", "udp"] as const;
export type Protocol = (typeof Protocols)[number];

/** One host→guest forward. */
export interface PortForward {
  proto: Protocol;
  hostPort: number;
  guestPort: number;
}

/** Why a port field was refused. */
export const PortSpecErrorCodes = {
  empty: "empty",
  not_digit: "not_digit",
  out_of_range: "out_of_range",
  not_string: "not_string",
  bad_format: "bad_format",
  bad_protocol: "bad_protocol",
  reversed_range: "reversed_range",
  range_length_mismatch: "range_length_mismatch",
  duplicate: "duplicate",
  too_many: "too_many",
} as const;
export type PortSpecErrorCode = keyof typeof PortSpecErrorCodes;

/** A port field is invalid; `message` is the text for the renter (DBC's wording where DBC has one). */
export class PortSpecError extends Error {
  constructor(
    readonly code: PortSpecErrorCode,
    /** The request field, e.g. `ssh_port`, `custom_port`, `new_vnc_port`. */
    readonly field: string,
    message: string,
    /** The offending `custom_port` entry, when there is one. */
    readonly entry?: string,
  ) {
    super(message);
    this.name = "PortSpecError";
  }
}

export interface PortRange {
  min: number;
  max: number;
}

export const ANY_PORT: PortRange = { min: 1, max: 65535 };
/** DBC: `vnc_port is invalid (usage: [5900, 65535])`. */
export const VNC_PORT_RANGE: PortRange = { min: 5900, max: 65535 };

/** Most forwards one `custom_port` list may expand to (each is a listening socket on the host). */
export const MAX_CUSTOM_FORWARDS = 1024;

/**
 * Validates a single-port field as DBC does: empty → `<field> is empty`, not all digits →
 * `<field> is not digit`, outside `range` → `<field> is invalid (usage: [min, max])`.
 * Lenient where DBC is sloppy: a JSON integer is accepted like its digit string.
 */
export function parsePortField(field: string, value: unknown, range: PortRange = ANY_PORT): number {
  let text: string;
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 0) throw new PortSpecError("not_digit", field, `${field} is not digit`);
    text = String(value);
  } else if (typeof value === "string") {
    text = value;
  } else if (value === undefined || value === null) {
    text = "";
  } else {
    throw new PortSpecError("not_digit", field, `${field} is not digit`);
  }
  if (text === "") throw new PortSpecError("empty", field, `${field} is empty`);
  if (!/^[0-9]+$/.test(text)) throw new PortSpecError("not_digit", field, `${field} is not digit`);
  const port = text.length > 6 ? Infinity : Number(text);
  if (port < range.min || port > range.max) {
    throw new PortSpecError("out_of_range", field, `${field} is invalid (usage: [${range.min}, ${range.max}])`);
  }
  return port;
}

/** `ssh_port`: DBC checks only empty/digits; batu also requires 1–65535 (DBC silently wrapped to 16 bits). */
export function parseSshPort(value: unknown, field = "ssh_port"): number {
  return parsePortField(field, value, ANY_PORT);
}

/** `rdp_port`: same rules as `ssh_port`. */
export function parseRdpPort(value: unknown, field = "rdp_port"): number {
  return parsePortField(field, value, ANY_PORT);
}

/** `vnc_port`: digits in 5900–65535 (DBC's rule and wording). */
export function parseVncPort(value: unknown, field = "vnc_port"): number {
  return parsePortField(field, value, VNC_PORT_RANGE);
}

/** DBC's text when a requested port is held by another VM: `port conflict, exist ssh_port = 5684`. */
export function portConflictMessage(kind: "ssh_port" | "rdp_port" | "vnc_port", port: number): string {
  return `port conflict, exist ${kind} = ${port}`;
}

const USAGE = "usage: 'tcp,123' 'udp,111:222' 'tcp,333-444' 'udp,555-666:777-888'";

function entryError(code: PortSpecErrorCode, field: string, entry: string, why: string): PortSpecError {
  return new PortSpecError(code, field, `${field} '${entry}' is invalid: ${why} (${USAGE})`, entry);
}

function parseRange(text: string, field: string, entry: string): PortRange {
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text.trim());
  if (!m) return badPortText(text, field, entry);
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  for (const p of [min, max]) {
    if (p < 1 || p > 65535) {
      throw entryError("out_of_range", field, entry, `port ${p} is out of range [1, 65535]`);
    }
  }
  if (min > max) throw entryError("reversed_range", field, entry, `range ${min}-${max} starts after it ends`);
  return { min, max };
}

function badPortText(text: string, field: string, entry: string): never {
  if (text.trim() === "") throw entryError("empty", field, entry, "a port is empty");
  if (/^[0-9]{6,}(-[0-9]+)?$|^[0-9]+-[0-9]{6,}$/.test(text.trim())) {
    throw entryError("out_of_range", field, entry, `port ${text.trim()} is out of range [1, 65535]`);
  }
  throw entryError("not_digit", field, entry, `'${text.trim()}' is not a port or a port range`);
}

/**
 * Parses one `custom_port` entry: `<tcp|udp>,<host port or range>[:<guest port or range>]`.
 * Without `:` the guest port equals the host port; ranges on both sides must be of equal length.
 * Protocol and spaces are tolerated in any case (`TCP, 80`). Returns one forward per port.
 */
export function parseCustomPort(entry: unknown, field = "custom_port"): PortForward[] {
  if (typeof entry !== "string") {
    throw new PortSpecError("not_string", field, `${field} entries must be strings like 'tcp,123'`);
  }
  if (entry.trim() === "") throw entryError("empty", field, entry, "the entry is empty");
  const parts = entry.split(",");
  if (parts.length !== 2) throw entryError("bad_format", field, entry, "expected '<protocol>,<ports>'");
  const protoText = (parts[0] ?? "").trim().toLowerCase();
  if (protoText !== "tcp" && protoText !== "udp") {
    throw entryError("bad_protocol", field, entry, `protocol must be 'tcp' or 'udp'`);
  }
  const proto: Protocol = protoText;
  const sides = (parts[1] ?? "").split(":");
  if (sides.length > 2) throw entryError("bad_format", field, entry, "more than one ':'");
  const host = parseRange(sides[0] ?? "", field, entry);
  const guest = sides[1] === undefined ? host : parseRange(sides[1], field, entry);
  if (guest.max - guest.min !== host.max - host.min) {
    throw entryError(
      "range_length_mismatch",
      field,
      entry,
      `host range has ${host.max - host.min + 1} ports, guest range ${guest.max - guest.min + 1}`,
    );
  }
  const out: PortForward[] = [];
  for (let i = 0; i <= host.max - host.min; i++) {
    out.push({ proto, hostPort: host.min + i, guestPort: guest.min + i });
  }
  return out;
}

/**
 * Parses a whole `custom_port` list. Refuses a host port forwarded twice (same protocol) and
 * lists that expand to more than `maxForwards` forwards. DBC skipped bad entries silently; batu
 * says which entry is wrong and why.
 */
export function parseCustomPorts(
  entries: unknown,
  opts: { field?: string; maxForwards?: number } = {},
): PortForward[] {
  const field = opts.field ?? "custom_port";
  const maxForwards = opts.maxForwards ?? MAX_CUSTOM_FORWARDS;
  if (entries === undefined || entries === null) return [];
  if (!Array.isArray(entries)) {
    throw new PortSpecError("bad_format", field, `${field} must be an array of strings like 'tcp,123'`);
  }
  const seen = new Map<string, string>();
  const out: PortForward[] = [];
  for (const entry of entries as unknown[]) {
    const forwards = parseCustomPort(entry, field);
    if (out.length + forwards.length > maxForwards) {
      throw new PortSpecError(
        "too_many",
        field,
        `${field} expands to more than ${maxForwards} ports`,
        typeof entry === "string" ? entry : undefined,
      );
    }
    for (const f of forwards) {
      const key = `${f.proto}/${f.hostPort}`;
      const first = seen.get(key);
      if (first !== undefined) {
        throw entryError("duplicate", field, entry as string, `${f.proto} port ${f.hostPort} is already forwarded by '${first}'`);
      }
      seen.set(key, entry as string);
      out.push(f);
    }
  }
  return out;
}
