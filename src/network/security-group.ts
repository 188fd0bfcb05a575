/**
 * DBC's `network_filters` (a VM's security group), parsed and checked without I/O.
 *
 * A rule is `direction,protocol,port,cidr,action`, e.g. `in,tcp,22,0.0.0.0/0,accept`. DBC turns them
 * into a libvirt nwfilter and silently skips the ones it cannot read, and uses only the address of
 * the CIDR; batu refuses a malformed rule (a renter whose firewall rule vanished would believe it
 * applies) and honours the mask. The rules become nftables chains in nft-ruleset.ts.
 */
import { FieldError } from "../vm/create-request.js";
import type { SecurityRule } from "./model.js";

/** Most rules one security group may hold (each is a rule in the host's forward path). */
export const MAX_SECURITY_RULES = 64;

type Direction = SecurityRule["direction"];
type Protocol = SecurityRule["protocol"];
type Action = SecurityRule["action"];

const DIRECTIONS: readonly Direction[] = ["in", "out", "inout"];
const ACTIONS: readonly Action[] = ["accept", "drop"];
const PLAIN_PROTOCOLS: readonly Protocol[] = ["all", "tcp", "udp", "icmp"];

/** DBC's protocol names that stand for one port (`createNWFilterXml`). */
const NAMED_PROTOCOLS: Readonly<Record<string, { protocol: "tcp" | "udp"; port: number }>> = {
  ssh: { protocol: "tcp", port: 22 },
  rdp: { protocol: "tcp", port: 3389 },
  http: { protocol: "tcp", port: 80 },
  https: { protocol: "tcp", port: 443 },
  ftp: { protocol: "tcp", port: 21 },
  "dns(udp)": { protocol: "udp", port: 53 },
  "dns(tcp)": { protocol: "tcp", port: 53 },
};

const USAGE = 'expected "direction,protocol,port,cidr,action", e.g. "in,tcp,22,0.0.0.0/0,accept"';

/**
 * Parses DBC's `network_filters`. undefined, null and `[]` mean no security group (null: all
 * traffic allowed). Throws a FieldError naming `field` for anything malformed, quoting the rule.
 *
 * Order produced (DBC's `createNWFilterXml`, where every rule has the same nwfilter priority so
 * the order written is the order applied): every rule that is not a catch-all, in the order given;
 * then the catch-all accepts (`all`, port `all`, `0.0.0.0/0`, `accept`), in the order given; then
 * the catch-all drops, in the order given. So `in,all,all,0.0.0.0/0,drop` written first still lets
 * `in,tcp,22,0.0.0.0/0,accept` through, as on DBC. (DBC reverses the catch-all accepts among
 * themselves; they all accept, so their order cannot matter and batu keeps the renter's.)
 */
export function parseNetworkFilters(rules: unknown, field = "network_filters"): SecurityRule[] | null {
  if (rules === undefined || rules === null) return null;
  if (!Array.isArray(rules)) throw new FieldError(field, `${field}: must be an array of rules, each ${USAGE}`);
  if (rules.length === 0) return null;
  if (rules.length > MAX_SECURITY_RULES) {
    throw new FieldError(field, `${field}: at most ${MAX_SECURITY_RULES} rules are allowed (got ${rules.length})`);
  }
  const parsed = rules.map((rule: unknown, i) => {
    if (typeof rule !== "string") {
      throw new FieldError(field, `${field}: rule ${i + 1} is not a string (${USAGE})`);
    }
    return parseRule(rule, (problem) => new FieldError(field, `${field}: rule ${i + 1} ${JSON.stringify(rule)}: ${problem}`));
  });
  const catchAllAccepts = parsed.filter((r) => isCatchAll(r) && r.action === "accept");
  const catchAllDrops = parsed.filter((r) => isCatchAll(r) && r.action === "drop");
  return [...parsed.filter((r) => !isCatchAll(r)), ...catchAllAccepts, ...catchAllDrops];
}

/** The rules as normalized DBC strings (`tasks/<id>` shows them as `network_filters`); null → []. */
export function formatNetworkFilters(rules: SecurityRule[] | null): string[] {
  return (rules ?? []).map(formatRule);
}

/** One rule as a normalized DBC string: lower case, named protocols spelled out, CIDR with its mask. */
export function formatRule(rule: SecurityRule): string {
  const port = rule.ports === null ? "all" : rule.ports.from === rule.ports.to ? `${rule.ports.from}` : `${rule.ports.from}-${rule.ports.to}`;
  return [rule.direction, rule.protocol, port, rule.cidr, rule.action].join(",");
}

function isCatchAll(rule: SecurityRule): boolean {
  return rule.protocol === "all" && rule.cidr === "0.0.0.0/0";
}

function parseRule(text: string, refuse: (problem: string) => FieldError): SecurityRule {
  const fields = text.split(",").map((f) => f.trim().toLowerCase());
  if (fields.length !== 5) throw refuse(`${USAGE} (got ${fields.length} field${fields.length === 1 ? "" : "s"})`);
  const [directionText, protocolText, portText, cidrText, actionText] = fields as [string, string, string, string, string];

  const direction = DIRECTIONS.find((d) => d === directionText);
  if (direction === undefined) throw refuse(`direction ${JSON.stringify(directionText)} is not one of in, out, inout`);

  const action = ACTIONS.find((a) => a === actionText);
  if (action === undefined) throw refuse(`action ${JSON.stringify(actionText)} is not one of accept, drop`);

  const cidr = parseCidr(cidrText, refuse);

  const named = Object.hasOwn(NAMED_PROTOCOLS, protocolText) ? NAMED_PROTOCOLS[protocolText] : undefined;
  if (named !== undefined) {
    // The name fixes the port; a different one written beside it is a mistake worth telling.
    if (portText !== "all" && parsePort(portText, refuse) !== named.port) {
      throw refuse(`protocol ${protocolText} means ${named.protocol} port ${named.port}; port must be "all" or ${named.port}`);
    }
    return { direction, protocol: named.protocol, ports: { from: named.port, to: named.port }, cidr, action, text };
  }

  const protocol = PLAIN_PROTOCOLS.find((p) => p === protocolText);
  if (protocol === undefined) {
    throw refuse(
      `protocol ${JSON.stringify(protocolText)} is not one of all, tcp, udp, icmp, ${Object.keys(NAMED_PROTOCOLS).join(", ")}`,
    );
  }
  if (protocol === "all" || protocol === "icmp") {
    if (portText !== "all") throw refuse(`port must be "all" for protocol ${protocol}`);
    return { direction, protocol, ports: null, cidr, action, text };
  }
  return { direction, protocol, ports: parsePorts(portText, refuse), cidr, action, text };
}

/** `all`, `N` or `N-M` (inclusive). */
function parsePorts(text: string, refuse: (problem: string) => FieldError): SecurityRule["ports"] {
  if (text === "all") return null;
  const range = /^([^-]*)-([^-]*)$/.exec(text);
  if (range === null) {
    const port = parsePort(text, refuse);
    return { from: port, to: port };
  }
  const from = parsePort(range[1] ?? "", refuse);
  const to = parsePort(range[2] ?? "", refuse);
  if (from > to) throw refuse(`port range ${text} is reversed (${from} > ${to})`);
  return { from, to };
}

function parsePort(text: string, refuse: (problem: string) => FieldError): number {
  if (!/^[0-9]+$/.test(text)) throw refuse(`port ${JSON.stringify(text)} is not a number, a range N-M or "all"`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw refuse(`port ${text} is not in 1-65535`);
  return port;
}

/** `a.b.c.d/n` or a bare `a.b.c.d` (/32), normalized to its network address: 10.1.2.3/8 → 10.0.0.0/8. */
function parseCidr(text: string, refuse: (problem: string) => FieldError): string {
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const maskText = slash === -1 ? "32" : text.slice(slash + 1);
  const address = parseIpv4(addressText);
  if (address === null) throw refuse(`cidr ${JSON.stringify(text)} is not an IPv4 address or network a.b.c.d/n`);
  if (!/^[0-9]{1,2}$/.test(maskText) || Number(maskText) > 32) {
    throw refuse(`cidr ${JSON.stringify(text)} has a mask that is not in 0-32`);
  }
  const bits = Number(maskText);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return `${formatIpv4((address & mask) >>> 0)}/${bits}`;
}

/** Dotted decimal, four parts 0-255; leading zeros refused (some tools read them as octal). */
function parseIpv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    value = value * 256 + Number(part);
  }
  return value;
}

function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}
