import { createHash } from "node:crypto";
import { intToIp, ipToInt, parseSubnet, type Subnet } from "../ipv4.js";
import { linkNameFor } from "../link-names.js";

/**
 * A private LAN network of the group (DBC's `lan/*`), as data. Each is a bridge on every host with a
 * member VM, the hosts' bridges joined by a VXLAN of the network's own id, sent unicast to the
 * other member hosts (head-end replication: no multicast routing needed on the hosts' LAN).
 */

/** VXLAN's IANA port. */
export const VXLAN_PORT = 4789;
/** 1500 less VXLAN's 50 bytes of headers: the guests' NICs on a LAN network (DBC sets the same). */
export const LAN_MTU = 1450;
/** VNIs are 24 bits; 0 is not used. */
export const MAX_VNI = 2 ** 24 - 1;

/** A VM's NIC on a LAN network, as the master gave it when the task was made (stored in its spec). */
export interface LanAttachment {
  /** @example "testnet1" */
  network: string;
  vni: number;
  /** @example "192.168.66.0/24" */
  cidr: string;
  /** The guest's address on it. */
  ip: string;
}

/** One of a host's VMs on a LAN network, as the host reports it to the master. */
export interface LanMember {
  network: string;
  ip: string;
  /** The task id the renter knows it by, where known. */
  task_id: string | null;
}

/** What a host must build for one LAN network: the master's view for that host. */
export interface LanView {
  network: string;
  vni: number;
  cidr: string;
  /** The other hosts with members (their addresses on the hosts' LAN): the VXLAN's unicast peers. */
  peers: string[];
  /** Present on the one host serving the network's DHCP: a fixed lease per member, group-wide. */
  dhcp: { mac: string; ip: string; hostname: string }[] | null;
}

/** Thrown with DBC's own texts (reference §4.6, §7). */
export class LanError extends Error {}

/** DBC's check_network_name: 6 to 10 letters or digits. */
export function checkNetworkName(name: unknown): string {
  if (typeof name !== "string" || name === "") throw new LanError("network name can not be empty");
  if (!/^[A-Za-z0-9]{6,10}$/.test(name)) throw new LanError("network name requires a combination of 6 to 10 letters or numbers");
  return name;
}

/** A LAN's range: `a.b.c.d/n`, the network address itself, not libvirt's default network, not the NAT network's. */
export function checkLanCidr(cidr: unknown, natSubnet?: Subnet): Subnet {
  if (typeof cidr !== "string" || cidr === "") throw new LanError("ip cidr can not be empty");
  if (cidr.includes("192.168.122.")) throw new LanError("invalid ip cidr: 192.168.122.0/24 is libvirt's default network");
  const subnet = parseSubnet(cidr);
  if (!subnet) throw new LanError("invalid ip cidr (usage: a.b.c.d/n, the network's own address, 8 <= n <= 29)");
  if (natSubnet && overlaps(subnet, natSubnet)) {
    throw new LanError(`invalid ip cidr: ${cidr} overlaps the hosts' NAT network ${natSubnet.network}/${natSubnet.prefix}`);
  }
  return subnet;
}

function overlaps(a: Subnet, b: Subnet): boolean {
  const [a0, a1] = bounds(a);
  const [b0, b1] = bounds(b);
  return a0 <= b1 && b0 <= a1;
}

const bounds = (s: Subnet): [number, number] => [ipToInt(s.network), ipToInt(s.last) + 1];

/** Guests' addresses: network + 1 up to broadcast − 2 (DBC's ip_start..). */
export function guestRange(subnet: Subnet): { first: string; last: string } {
  return { first: subnet.gateway, last: intToIp(ipToInt(subnet.last) - 1) };
}

/** The DHCP server's own address on the network: its last one, never a guest's. */
export const dhcpServerAddress = (subnet: Subnet): string => subnet.last;

/** The host links of a network: its bridge and its VXLAN (names fit IFNAMSIZ: 3 + 10 characters). */
export function lanLinks(network: string): { bridge: string; vxlan: string } {
  return { bridge: `bl-${network}`, vxlan: `vl-${network}` };
}

/** A VM's tap on its LAN network's bridge. */
export const LAN_TAP_PREFIX = "bn-";
export const lanTapFor = (vmId: string): string => linkNameFor(LAN_TAP_PREFIX, `lan/${vmId}`);

/**
 * The MAC of the member with address `ip` on `network`: known to the master (which gives the
 * address) and to the host (which boots the VM) alike, so the DHCP host's fixed leases need no
 * other exchange. Locally administered (0x02 bit), unicast.
 */
export function lanMac(network: string, ip: string): string {
  const h = createHash("sha256").update(`lan/${network}`).digest();
  const bytes = [0x06, h[0]!, ...ip.split(".").map(Number)];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** The field of a forwarded `tasks/start` by which the master gives the member a task's LAN NIC. */
export const LAN_ATTACHMENT_FIELD = "batu_lan";

/** A LAN attachment as sent between agents, checked; null when it is not one. */
export function parseLanAttachment(v: unknown): LanAttachment | null {
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.network !== "string" || !/^[A-Za-z0-9]{6,10}$/.test(o.network)) return null;
  if (typeof o.vni !== "number" || !Number.isInteger(o.vni) || o.vni < 1 || o.vni > MAX_VNI) return null;
  const subnet = typeof o.cidr === "string" ? parseSubnet(o.cidr) : null;
  if (!subnet || typeof o.ip !== "string") return null;
  const { first, last } = guestRange(subnet);
  const n = /^\d+\.\d+\.\d+\.\d+$/.test(o.ip) ? ipToInt(o.ip) : -1;
  if (n < ipToInt(first) || n > ipToInt(last)) return null;
  return { network: o.network, vni: o.vni, cidr: `${subnet.network}/${subnet.prefix}`, ip: o.ip };
}
