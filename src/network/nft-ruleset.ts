/**
 * The host's whole NAT firewall as ONE nftables table, `table inet batu`, rendered from data alone
 * (no I/O; nft.ts loads it). The script is
 *
 *     table inet batu {}        # make sure it exists, so that the delete cannot fail
 *     delete table inet batu    # drop the old one, whatever it held
 *     table inet batu { ... }   # the new one
 *
 * given to `nft -f -` as one file, which nft commits as one transaction: the old table is replaced
 * whole or, on any error, left as it was. Other tables (the host's own firewall, Docker, libvirt)
 * are never touched.
 *
 * What the table does:
 * - Port forwards: a packet to any local address of the host (`fib daddr type local`) on a
 *   forwarded port is DNATed to the guest's ip:port, through one map per protocol (a VM may forward
 *   thousands of ports, a map lookup costs the same for one or all). In prerouting (from the LAN)
 *   and in the nat output hook (from the host itself, by one of its addresses) except to
 *   127.0.0.0/8: with `route_localnet` off (the default, and it should stay off) the kernel drops a
 *   packet from 127.x that leaves the loopback device, so a DNAT there could never work.
 * - Public IPs 1:1: every packet to the public address goes to the VM (prerouting and output, and
 *   before the forward maps, so that a public address's ports belong to its VM only), and the VM's
 *   traffic leaving by any link but the bridge is SNATed to its public address.
 * - Masquerade: the rest of the subnet's traffic leaving by any link but the bridge. Hairpin: a
 *   DNATed connection from the subnet back out of the bridge (a guest reaching a forward or a public
 *   IP of a guest, its own included) is masqueraded too, so that the answer comes back through the
 *   host to be un-NATed instead of going straight to the guest that never sent to that address.
 *   Hairpin needs `net.bridge.bridge-nf-call-iptables` off in the bridge's namespace where
 *   br_netfilter is loaded: else its "bridged DNAT" sends the DNATed packet back out at L2, where
 *   the port it came in by, or an isolated one, refuses it (seen in nft.test.ts).
 * - Security groups (DBC's `network_filters`, security-group.ts) in the forward hook. Guests on the
 *   NAT bridge are isolated from each other at L2 (their taps are `bridge link ... isolated on`), so
 *   all their traffic, guest to guest included, goes through the host's IP stack and this forward
 *   chain: traffic to a VM jumps to its "in" chain, traffic from a VM to its "out" chain, so a
 *   packet between two guests passes the sender's "out" and then the receiver's "in" chain.
 *   Replies to an allowed connection pass first (`ct state established,related`), as with libvirt's
 *   stateful nwfilter rules. Traffic between a guest and the host itself (DHCP, DNS, the output DNAT
 *   above) is not forwarded and so not filtered: a renter cannot cut a guest off its own DHCP.
 * - Private LAN networks (network/lan), their bridges `bl-*` matched by name: the host routes nothing
 *   to or from them and accepts nothing from them but DHCP (its address there, on the network's
 *   DHCP host, serves nothing else); their VXLAN is accepted only from the other member hosts.
 *
 * Anti-spoofing (a guest sending from another address) is handled elsewhere, not here.
 */
import { formatRule } from "./security-group.js";
import type { Forward, NatAttachment, NatNetwork, SecurityRule } from "./model.js";

export const NFT_FAMILY = "inet";
export const NFT_TABLE = "batu";

export interface RenderOptions {
  /**
   * The hosts this one exchanges LAN networks' VXLAN with: while it has any LAN network (given, even
   * empty), UDP 4789 from any other address is dropped, so no one else can put frames on a LAN.
   */
  lanPeers?: string[];
}

/** Every LAN network's bridge (network/lan: `bl-<name>`), matched by name whether it exists yet or not. */
const LAN_BRIDGES = quote("bl-*");
/** VXLAN's port (network/lan/model.ts VXLAN_PORT). */
const VXLAN_PORT = 4789;

/** The input cannot make a valid table (a bad name or address, a port forwarded twice): a bug upstream. */
export class RulesetInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RulesetInputError";
  }
}

/** The two chains of a VM's security group. */
export interface VmChainNames {
  in: string;
  out: string;
}

/** Renders the script that replaces `table inet batu` with the ruleset for `net` and `vms`. */
export function renderRuleset(net: NatNetwork, vms: NatAttachment[], opts: RenderOptions = {}): string {
  checkInput(net, vms, opts);
  const sorted = byVmId(vms);
  const lanPeers = opts.lanPeers === undefined ? null : [...new Set(opts.lanPeers)].sort();
  const chainNames = securityChainNames(sorted);
  const bridge = quote(net.bridge);

  const forwardsTo = (proto: Forward["proto"]): string[] =>
    sorted
      .flatMap((vm) => vm.forwards.filter((f) => f.proto === proto).map((f) => ({ vm, f })))
      .sort((a, b) => a.f.hostPort - b.f.hostPort)
      .map(({ vm, f }) => `${f.hostPort} : ${vm.ip} . ${f.guestPort}`);
  const withPublicIp = sorted.filter((vm): vm is NatAttachment & { publicIp: string } => vm.publicIp !== null);
  const publicDnat = withPublicIp.map((vm) => `ip daddr ${vm.publicIp} dnat ip to ${vm.ip}`);

  const lines: string[] = [
    `table ${NFT_FAMILY} ${NFT_TABLE} {}`,
    `delete table ${NFT_FAMILY} ${NFT_TABLE}`,
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    ...block("map forward_tcp", ["type inet_service : ipv4_addr . inet_service", ...elements(forwardsTo("tcp"))]),
    ...block("map forward_udp", ["type inet_service : ipv4_addr . inet_service", ...elements(forwardsTo("udp"))]),
    ...(lanPeers ? block("set lan_peers", ["type ipv4_addr", ...elements(lanPeers)]) : []),
    ...block("chain prerouting", [
      "type nat hook prerouting priority dstnat; policy accept;",
      ...publicDnat,
      "meta nfproto ipv4 fib daddr type local dnat ip to tcp dport map @forward_tcp",
      "meta nfproto ipv4 fib daddr type local dnat ip to udp dport map @forward_udp",
    ]),
    ...block("chain output", [
      // nft 1.0.6 refuses `priority dstnat` in the output hook; -100 is its value.
      "type nat hook output priority -100; policy accept;",
      ...publicDnat,
      "ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to tcp dport map @forward_tcp",
      "ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to udp dport map @forward_udp",
    ]),
    ...block("chain postrouting", [
      "type nat hook postrouting priority srcnat; policy accept;",
      `ip saddr ${net.cidr} oifname ${bridge} ct status dnat masquerade comment "hairpin"`,
      ...withPublicIp.map((vm) => `ip saddr ${vm.ip} oifname != ${bridge} snat ip to ${vm.publicIp}`),
      `ip saddr ${net.cidr} oifname != ${bridge} masquerade`,
    ]),
    ...block("chain input", [
      "type filter hook input priority filter; policy accept;",
      // A LAN network's DHCP host has an address there (without a route): it serves DHCP on it, nothing else.
      `iifname ${LAN_BRIDGES} udp dport 67 accept`,
      `iifname ${LAN_BRIDGES} drop`,
      ...(lanPeers ? [`udp dport ${VXLAN_PORT} ip saddr != @lan_peers drop`] : []),
    ]),
    ...block("chain forward", [
      "type filter hook forward priority filter; policy accept;",
      // Routed to or from a LAN, dropped; bridged within it (seen here only with br_netfilter on), not.
      `iifname ${LAN_BRIDGES} oifname != ${LAN_BRIDGES} drop`,
      `oifname ${LAN_BRIDGES} iifname != ${LAN_BRIDGES} drop`,
      "ct state established,related accept",
      // Sender's "out" chain before the receiver's "in" chain; either may drop, neither accepts
      // for the other (their accept is a return), and what both let through meets the policy.
      ...sorted.flatMap((vm) => {
        const names = chainNames.get(vm.vmId);
        return names === undefined || !hasRules(vm, "out") ? [] : [`ip saddr ${vm.ip} jump ${names.out}`];
      }),
      ...sorted.flatMap((vm) => {
        const names = chainNames.get(vm.vmId);
        return names === undefined || !hasRules(vm, "in") ? [] : [`ip daddr ${vm.ip} jump ${names.in}`];
      }),
    ]),
    ...sorted.flatMap((vm) => {
      const names = chainNames.get(vm.vmId);
      if (names === undefined) return [];
      return [
        ...(hasRules(vm, "in") ? block(`chain ${names.in}`, securityChain(vm.filters ?? [], "in")) : []),
        ...(hasRules(vm, "out") ? block(`chain ${names.out}`, securityChain(vm.filters ?? [], "out")) : []),
      ];
    }),
    "}",
  ];
  return lines.join("\n") + "\n";
}

/**
 * The security-group chain names of the VMs that have a security group: `vm_in_<id>` and
 * `vm_out_<id>`, the id cut to [A-Za-z0-9_] (64 characters at most); two ids that come out the same
 * get `_2`, `_3`... in the order of their ids.
 */
export function securityChainNames(vms: readonly NatAttachment[]): Map<string, VmChainNames> {
  const names = new Map<string, VmChainNames>();
  const taken = new Set<string>();
  for (const vm of byVmId(vms)) {
    if (vm.filters === null) continue;
    const base = vm.vmId.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 64) || "_";
    let unique = base;
    for (let n = 2; taken.has(unique); n++) unique = `${base}_${n}`;
    taken.add(unique);
    names.set(vm.vmId, { in: `vm_in_${unique}`, out: `vm_out_${unique}` });
  }
  return names;
}

/**
 * One direction of a security group, rule by rule: the first rule that matches decides. A rule's
 * `accept` is a `return`, not an `accept`: between two guests the other's chain must still be
 * asked; what no chain drops meets the forward chain's `policy accept`.
 */
function securityChain(rules: readonly SecurityRule[], direction: "in" | "out"): string[] {
  // In an "in" chain the peer is the source, in an "out" chain the destination.
  const peer = direction === "in" ? "ip saddr" : "ip daddr";
  return [
    ...rules
      .filter((r) => r.direction === direction || r.direction === "inout")
      .map((r) => {
        const matches = [
          r.cidr === "0.0.0.0/0" ? null : `${peer} ${r.cidr}`,
          protocolMatch(r),
          r.action === "accept" ? "return" : "drop",
          `comment ${quote(formatRule(r))}`,
        ];
        return matches.filter((m) => m !== null).join(" ");
      }),
    // What libvirt's nwfilter (so DBC) does when no rule matched: accept.
    `return comment "no rule matched: accept"`,
  ];
}

function protocolMatch(rule: SecurityRule): string | null {
  switch (rule.protocol) {
    case "all":
      return null;
    case "icmp":
      return "meta l4proto icmp";
    case "tcp":
    case "udp": {
      const ports = rule.ports;
      if (ports === null) return `meta l4proto ${rule.protocol}`;
      return `${rule.protocol} dport ${ports.from === ports.to ? ports.from : `${ports.from}-${ports.to}`}`;
    }
  }
}

/** Sorted so that the same VMs give the same text whatever order the caller keeps them in. */
function byVmId(vms: readonly NatAttachment[]): NatAttachment[] {
  return [...vms].sort((a, b) => (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0));
}

function hasRules(vm: NatAttachment, direction: "in" | "out"): boolean {
  return (vm.filters ?? []).some((r) => r.direction === direction || r.direction === "inout");
}

function block(header: string, body: string[]): string[] {
  return [`\t${header} {`, ...body.map((l) => `\t\t${l}`), "\t}"];
}

function elements(items: string[]): string[] {
  if (items.length === 0) return [];
  return ["elements = {", ...items.map((e, i) => `\t${e}${i < items.length - 1 ? "," : ""}`), "}"];
}

function quote(text: string): string {
  return `"${text}"`;
}

// Everything spliced into the script is checked first: a stray quote or brace would change its meaning.
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

function isCidr(text: string): boolean {
  const [address, mask, ...rest] = text.split("/");
  return rest.length === 0 && address !== undefined && IPV4.test(address) && mask !== undefined && /^(?:[0-9]|[12][0-9]|3[0-2])$/.test(mask);
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

function checkInput(net: NatNetwork, vms: readonly NatAttachment[], opts: RenderOptions): void {
  const refuse = (message: string): never => {
    throw new RulesetInputError(message);
  };
  if (!IFNAME.test(net.bridge)) refuse(`bridge name ${JSON.stringify(net.bridge)} is not a valid interface name`);
  if (!isCidr(net.cidr)) refuse(`subnet ${JSON.stringify(net.cidr)} is not an IPv4 CIDR`);
  if (net.bridge.startsWith("bl-")) refuse(`bridge name ${net.bridge}: bl-* are the LAN networks' bridges`);
  for (const p of opts.lanPeers ?? []) if (!IPV4.test(p)) refuse(`LAN peer ${JSON.stringify(p)} is not IPv4`);
  const vmIds = new Set<string>();
  const ipOwner = new Map<string, string>();
  const publicIpOwner = new Map<string, string>();
  const portOwner = new Map<string, string>();
  for (const vm of vms) {
    if (vmIds.has(vm.vmId)) refuse(`vm ${vm.vmId} is listed twice`);
    vmIds.add(vm.vmId);
    if (!IPV4.test(vm.ip)) refuse(`vm ${vm.vmId}: address ${JSON.stringify(vm.ip)} is not IPv4`);
    const ipHolder = ipOwner.get(vm.ip);
    if (ipHolder !== undefined) refuse(`vm ${vm.vmId}: address ${vm.ip} is also vm ${ipHolder}'s`);
    ipOwner.set(vm.ip, vm.vmId);
    if (vm.publicIp !== null) {
      if (!IPV4.test(vm.publicIp)) refuse(`vm ${vm.vmId}: public address ${JSON.stringify(vm.publicIp)} is not IPv4`);
      const publicHolder = publicIpOwner.get(vm.publicIp);
      if (publicHolder !== undefined) refuse(`vm ${vm.vmId}: public address ${vm.publicIp} is also vm ${publicHolder}'s`);
      publicIpOwner.set(vm.publicIp, vm.vmId);
    }
    for (const f of vm.forwards) {
      if (f.proto !== "tcp" && f.proto !== "udp") refuse(`vm ${vm.vmId}: forward protocol ${JSON.stringify(f.proto)} is not tcp or udp`);
      if (!isPort(f.hostPort) || !isPort(f.guestPort)) refuse(`vm ${vm.vmId}: forward ${f.proto} ${f.hostPort} → ${f.guestPort} has a port out of 1-65535`);
      const key = `${f.proto} ${f.hostPort}`;
      const portHolder = portOwner.get(key);
      if (portHolder !== undefined) refuse(`vm ${vm.vmId}: host port ${key} is already forwarded to vm ${portHolder}`);
      portOwner.set(key, vm.vmId);
    }
    for (const r of vm.filters ?? []) {
      const portsOk = r.ports === null || (isPort(r.ports.from) && isPort(r.ports.to) && r.ports.from <= r.ports.to);
      if (!isCidr(r.cidr) || !portsOk || (r.ports !== null && r.protocol !== "tcp" && r.protocol !== "udp")) {
        refuse(`vm ${vm.vmId}: security rule ${JSON.stringify(r.text)} was not checked by parseNetworkFilters`);
      }
    }
  }
}
