/**
 * What batu's bridged networking is made of, as data: the NAT network of a host and each running
 * VM's place on it. The nftables ruleset (nft-ruleset.ts) is rendered from these alone, so the
 * table always follows the VMs: rebuilt whole, in one transaction, at each change and at start.
 */

/** The host's NAT network: a bridge with a private subnet, NATed out of the host's other links. */
export interface NatNetwork {
  /** The bridge device. @example "batubr0" */
  bridge: string;
  /** The subnet. @example "10.123.0.0/16" */
  cidr: string;
  /** The bridge's own address in it: the guests' gateway, DHCP and DNS server. @example "10.123.0.1" */
  gateway: string;
}

/** One host port forwarded to a guest port. */
export interface Forward {
  proto: "tcp" | "udp";
  hostPort: number;
  guestPort: number;
}

/** One rule of a security group (DBC's `network_filters`, parsed and checked: security-group.ts). */
export interface SecurityRule {
  direction: "in" | "out" | "inout";
  /** DBC's names reduced to what nftables matches. */
  protocol: "all" | "tcp" | "udp" | "icmp";
  /** Ports (inclusive), or null for any. Only with tcp or udp. */
  ports: { from: number; to: number } | null;
  /** The peer's network, mask honoured. @example "10.0.0.0/8" */
  cidr: string;
  action: "accept" | "drop";
  /** The rule as the renter wrote it, for messages. */
  text: string;
}

/** A running VM's NIC on the NAT network, and what the host does for it. */
export interface NatAttachment {
  vmId: string;
  /** Its tap device, a port of the bridge. @example "bt-1a2b3c4d5e" */
  tap: string;
  mac: string;
  /** Its fixed address in the subnet (a DHCP lease for its MAC, and its kernel command line where the image reads one). */
  ip: string;
  forwards: Forward[];
  /** The renter's security group in the order to apply; null: none given (everything allowed). */
  filters: SecurityRule[] | null;
  /** An address of the operator's pool mapped 1:1 to the VM (DNAT in, SNAT out), or null. */
  publicIp: string | null;
}
