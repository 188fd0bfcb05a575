import { isIPv4 } from "node:net";

/** IPv4 arithmetic for subnets batu hands addresses out of. Pure. */

export const ipToInt = (ip: string): number => ip.split(".").reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");

export interface Subnet {
  /** Network address. */
  network: string;
  prefix: number;
  netmask: string;
  /** First usable address (network + 1): batu's bridge, the guests' gateway. */
  gateway: string;
  /** Guests' addresses: gateway + 1 up to the last before broadcast. */
  first: string;
  last: string;
}

/** Parses `a.b.c.d/n` (8 ≤ n ≤ 29, the network address itself); null when it is not one. */
export function parseSubnet(cidr: string): Subnet | null {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr.trim());
  if (!m || !isIPv4(m[1]!)) return null;
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 29) return null;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = ipToInt(m[1]!);
  if ((net & mask) >>> 0 !== net) return null;
  const broadcast = (net | (~mask >>> 0)) >>> 0;
  return { network: m[1]!, prefix, netmask: intToIp(mask), gateway: intToIp(net + 1), first: intToIp(net + 2), last: intToIp(broadcast - 1) };
}

/** Whether `ip` is inside `subnet`. */
export function inSubnet(ip: string, subnet: Subnet): boolean {
  const mask = ipToInt(subnet.netmask);
  return ((ipToInt(ip) & mask) >>> 0) === ipToInt(subnet.network);
}

/** The lowest guest address of `subnet` not in `taken`, or null when every one is. */
export function lowestFree(subnet: Subnet, taken: ReadonlySet<string>): string | null {
  for (let n = ipToInt(subnet.first); n <= ipToInt(subnet.last); n++) {
    const ip = intToIp(n);
    if (!taken.has(ip)) return ip;
  }
  return null;
}
