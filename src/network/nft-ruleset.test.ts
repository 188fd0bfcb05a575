import { describe, expect, it } from "vitest";
import type { NatAttachment, NatNetwork } from "./model.js";
import { RulesetInputError, renderRuleset, securityChainNames } from "./nft-ruleset.js";
import { parseNetworkFilters } from "./security-group.js";

const net: NatNetwork = { bridge: "batubr0", cidr: "10.123.0.0/16", gateway: "10.123.0.1" };

function vm(over: Partial<NatAttachment> & { vmId: string; ip: string }): NatAttachment {
  return { tap: "bt-0000000000", mac: "52:54:00:00:00:01", forwards: [], filters: null, publicIp: null, ...over };
}

/** The body lines of one chain or map, without the tabs. */
function section(script: string, header: string): string[] {
  const lines = script.split("\n");
  const start = lines.indexOf(`\t${header} {`);
  if (start === -1) throw new Error(`no ${header} in:\n${script}`);
  const end = lines.indexOf("\t}", start);
  return lines.slice(start + 1, end).map((l) => l.trim());
}

describe("renderRuleset", () => {
  it("replaces table inet batu in one script, and names no other table", () => {
    const script = renderRuleset(net, []);
    const lines = script.split("\n");
    expect(lines.slice(0, 3)).toEqual(["table inet batu {}", "delete table inet batu", "table inet batu {"]);
    expect(script.endsWith("}\n")).toBe(true);
    expect(script.match(/^table .*$/gm)).toEqual(["table inet batu {}", "table inet batu {"]);
  });

  it("forwards host ports through one map per protocol, sorted by host port", () => {
    const script = renderRuleset(net, [
      vm({ vmId: "b", ip: "10.123.0.6", forwards: [{ proto: "tcp", hostPort: 8080, guestPort: 80 }] }),
      vm({
        vmId: "a",
        ip: "10.123.0.5",
        forwards: [
          { proto: "tcp", hostPort: 2222, guestPort: 22 },
          { proto: "udp", hostPort: 5353, guestPort: 53 },
          { proto: "udp", hostPort: 5300, guestPort: 5300 },
        ],
      }),
    ]);
    expect(section(script, "map forward_tcp")).toEqual([
      "type inet_service : ipv4_addr . inet_service",
      "elements = {",
      "2222 : 10.123.0.5 . 22,",
      "8080 : 10.123.0.6 . 80",
      "}",
    ]);
    expect(section(script, "map forward_udp")).toEqual([
      "type inet_service : ipv4_addr . inet_service",
      "elements = {",
      "5300 : 10.123.0.5 . 5300,",
      "5353 : 10.123.0.5 . 53",
      "}",
    ]);
    expect(section(script, "chain prerouting")).toEqual([
      "type nat hook prerouting priority dstnat; policy accept;",
      "meta nfproto ipv4 fib daddr type local dnat ip to tcp dport map @forward_tcp",
      "meta nfproto ipv4 fib daddr type local dnat ip to udp dport map @forward_udp",
    ]);
    // From the host itself too, but not by 127.x (route_localnet is off), at a numeric priority.
    expect(section(script, "chain output")).toEqual([
      "type nat hook output priority -100; policy accept;",
      "ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to tcp dport map @forward_tcp",
      "ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to udp dport map @forward_udp",
    ]);
  });

  it("renders empty maps without elements", () => {
    expect(section(renderRuleset(net, []), "map forward_tcp")).toEqual(["type inet_service : ipv4_addr . inet_service"]);
  });

  it("holds thousands of forwards as map elements, not rules", () => {
    const forwards = Array.from({ length: 5000 }, (_, i) => ({ proto: "tcp" as const, hostPort: 20000 + i, guestPort: 20000 + i }));
    const script = renderRuleset(net, [vm({ vmId: "big", ip: "10.123.0.9", forwards })]);
    expect(section(script, "map forward_tcp")).toHaveLength(5000 + 3);
    expect(section(script, "chain prerouting")).toHaveLength(3);
  });

  it("masquerades the subnet out of every link but the bridge, and DNATed traffic back into it (hairpin)", () => {
    expect(section(renderRuleset(net, []), "chain postrouting")).toEqual([
      "type nat hook postrouting priority srcnat; policy accept;",
      'ip saddr 10.123.0.0/16 oifname "batubr0" ct status dnat masquerade comment "hairpin"',
      'ip saddr 10.123.0.0/16 oifname != "batubr0" masquerade',
    ]);
  });

  it("maps a public IP 1:1: DNAT before the forward maps, SNAT before the masquerade", () => {
    const script = renderRuleset(net, [
      vm({ vmId: "a", ip: "10.123.0.5", publicIp: "203.0.113.10" }),
      vm({ vmId: "b", ip: "10.123.0.6" }),
    ]);
    for (const chain of ["chain prerouting", "chain output"]) {
      const rules = section(script, chain);
      expect(rules[1]).toBe("ip daddr 203.0.113.10 dnat ip to 10.123.0.5");
      expect(rules.filter((r) => r.includes("203.0.113.10"))).toHaveLength(1);
      expect(rules[2]).toContain("dport map @forward_tcp");
    }
    expect(section(script, "chain postrouting").slice(1)).toEqual([
      'ip saddr 10.123.0.0/16 oifname "batubr0" ct status dnat masquerade comment "hairpin"',
      'ip saddr 10.123.0.5 oifname != "batubr0" snat ip to 203.0.113.10',
      'ip saddr 10.123.0.0/16 oifname != "batubr0" masquerade',
    ]);
  });

  it("filters a VM's traffic in its own chains: cidr as source in, as destination out, inout in both, in DBC's order", () => {
    const filters = parseNetworkFilters([
      "in,all,all,0.0.0.0/0,drop",
      "in,ssh,all,0.0.0.0/0,accept",
      "in,tcp,80,192.168.1.20,drop",
      "out,udp,1000-2000,8.8.0.0/16,drop",
      "inout,icmp,all,10.0.0.0/8,accept",
      "out,tcp,all,1.2.3.4/32,accept",
    ]);
    const script = renderRuleset(net, [vm({ vmId: "abc", ip: "10.123.0.5", filters }), vm({ vmId: "open", ip: "10.123.0.6" })]);
    expect(section(script, "chain forward")).toEqual([
      "type filter hook forward priority filter; policy accept;",
      'iifname "bl-*" oifname != "bl-*" drop',
      'oifname "bl-*" iifname != "bl-*" drop',
      "ct state established,related accept",
      "ip saddr 10.123.0.5 jump vm_out_abc",
      "ip daddr 10.123.0.5 jump vm_in_abc",
    ]);
    expect(section(script, "chain vm_in_abc")).toEqual([
      'tcp dport 22 return comment "in,tcp,22,0.0.0.0/0,accept"',
      'ip saddr 192.168.1.20/32 tcp dport 80 drop comment "in,tcp,80,192.168.1.20/32,drop"',
      'ip saddr 10.0.0.0/8 meta l4proto icmp return comment "inout,icmp,all,10.0.0.0/8,accept"',
      'drop comment "in,all,all,0.0.0.0/0,drop"',
      'return comment "no rule matched: accept"',
    ]);
    expect(section(script, "chain vm_out_abc")).toEqual([
      'ip daddr 8.8.0.0/16 udp dport 1000-2000 drop comment "out,udp,1000-2000,8.8.0.0/16,drop"',
      'ip daddr 10.0.0.0/8 meta l4proto icmp return comment "inout,icmp,all,10.0.0.0/8,accept"',
      'ip daddr 1.2.3.4/32 meta l4proto tcp return comment "out,tcp,all,1.2.3.4/32,accept"',
      'return comment "no rule matched: accept"',
    ]);
    // A VM without a security group gets no chain and no jump.
    expect(script).not.toContain("10.123.0.6 jump");
    expect(script).not.toContain("vm_in_open");
  });

  it("makes only the chains of the directions a security group has rules for", () => {
    const script = renderRuleset(net, [vm({ vmId: "a", ip: "10.123.0.5", filters: parseNetworkFilters(["in,tcp,22,0.0.0.0/0,drop"]) })]);
    expect(script).toContain("chain vm_in_a {");
    expect(script).not.toContain("vm_out_a");
  });

  it("isolates private LAN bridges: nothing routed, only DHCP to the host; VXLAN only from the peers", () => {
    const script = renderRuleset(net, [], { lanPeers: ["10.0.0.9", "10.0.0.2", "10.0.0.9"] });
    expect(section(script, "set lan_peers")).toEqual(["type ipv4_addr", "elements = {", "10.0.0.2,", "10.0.0.9", "}"]);
    expect(section(script, "chain input")).toEqual([
      "type filter hook input priority filter; policy accept;",
      'iifname "bl-*" udp dport 67 accept',
      'iifname "bl-*" drop',
      "udp dport 4789 ip saddr != @lan_peers drop",
    ]);
    expect(section(script, "chain forward")).toEqual([
      "type filter hook forward priority filter; policy accept;",
      'iifname "bl-*" oifname != "bl-*" drop',
      'oifname "bl-*" iifname != "bl-*" drop',
      "ct state established,related accept",
    ]);
    // No LAN network on this host: no VXLAN rule, port 4789 is none of batu's business.
    expect(renderRuleset(net, [])).not.toContain("4789");
  });

  it("gives the same text whatever order the VMs come in", () => {
    const a = vm({ vmId: "a", ip: "10.123.0.5", forwards: [{ proto: "tcp", hostPort: 1, guestPort: 1 }], filters: parseNetworkFilters(["in,tcp,22,0.0.0.0/0,drop"]) });
    const b = vm({ vmId: "b", ip: "10.123.0.6", forwards: [{ proto: "tcp", hostPort: 2, guestPort: 2 }], filters: parseNetworkFilters(["in,tcp,22,0.0.0.0/0,drop"]) });
    expect(renderRuleset(net, [b, a])).toBe(renderRuleset(net, [a, b]));
  });

  it.each<[string, () => string]>([
    ["a bridge name with a quote", () => renderRuleset({ ...net, bridge: 'br"0' }, [])],
    ["a bad subnet", () => renderRuleset({ ...net, cidr: "10.123.0.0" }, [])],
    ["a LAN peer that is no address", () => renderRuleset(net, [], { lanPeers: ["10.0.0.1; drop"] })],
    ["a NAT bridge named as the LAN bridges are", () => renderRuleset({ ...net, bridge: "bl-nat" }, [])],
    ["a bad VM address", () => renderRuleset(net, [vm({ vmId: "a", ip: "10.123.0.256" })])],
    ["a bad public address", () => renderRuleset(net, [vm({ vmId: "a", ip: "10.123.0.5", publicIp: "x" })])],
    ["a VM listed twice", () => renderRuleset(net, [vm({ vmId: "a", ip: "10.123.0.5" }), vm({ vmId: "a", ip: "10.123.0.6" })])],
    ["two VMs on one address", () => renderRuleset(net, [vm({ vmId: "a", ip: "10.123.0.5" }), vm({ vmId: "b", ip: "10.123.0.5" })])],
    [
      "two VMs on one public address",
      () => renderRuleset(net, [vm({ vmId: "a", ip: "10.123.0.5", publicIp: "1.2.3.4" }), vm({ vmId: "b", ip: "10.123.0.6", publicIp: "1.2.3.4" })]),
    ],
    [
      "a host port forwarded twice",
      () =>
        renderRuleset(net, [
          vm({ vmId: "a", ip: "10.123.0.5", forwards: [{ proto: "udp", hostPort: 53, guestPort: 53 }] }),
          vm({ vmId: "b", ip: "10.123.0.6", forwards: [{ proto: "udp", hostPort: 53, guestPort: 5353 }] }),
        ]),
    ],
    ["a port out of range", () => renderRuleset(net, [vm({ vmId: "a", ip: "10.123.0.5", forwards: [{ proto: "tcp", hostPort: 0, guestPort: 22 }] })])],
    [
      "an unchecked security rule",
      () =>
        renderRuleset(net, [
          vm({ vmId: "a", ip: "10.123.0.5", filters: [{ direction: "in", protocol: "tcp", ports: null, cidr: '0.0.0.0/0" drop', action: "accept", text: "" }] }),
        ]),
    ],
  ])("refuses %s", (_what, render) => {
    expect(render).toThrow(RulesetInputError);
  });

  it("names the VM that already holds a forwarded port", () => {
    expect(() =>
      renderRuleset(net, [
        vm({ vmId: "a", ip: "10.123.0.5", forwards: [{ proto: "tcp", hostPort: 2222, guestPort: 22 }] }),
        vm({ vmId: "b", ip: "10.123.0.6", forwards: [{ proto: "tcp", hostPort: 2222, guestPort: 22 }] }),
      ]),
    ).toThrow("vm b: host port tcp 2222 is already forwarded to vm a");
  });

  it("allows the same port number for tcp and udp", () => {
    expect(() =>
      renderRuleset(net, [
        vm({ vmId: "a", ip: "10.123.0.5", forwards: [{ proto: "tcp", hostPort: 53, guestPort: 53 }] }),
        vm({ vmId: "b", ip: "10.123.0.6", forwards: [{ proto: "udp", hostPort: 53, guestPort: 53 }] }),
      ]),
    ).not.toThrow();
  });
});

describe("securityChainNames", () => {
  const filters = parseNetworkFilters(["in,tcp,22,0.0.0.0/0,drop"]);

  it("keeps a DBC task id as it is", () => {
    expect(securityChainNames([vm({ vmId: "AbC123def456GHI789jk", ip: "10.123.0.5", filters })]).get("AbC123def456GHI789jk")).toEqual({
      in: "vm_in_AbC123def456GHI789jk",
      out: "vm_out_AbC123def456GHI789jk",
    });
  });

  it("cuts other ids to [A-Za-z0-9_] and keeps them apart", () => {
    const names = securityChainNames([
      vm({ vmId: "a-b", ip: "10.123.0.5", filters }),
      vm({ vmId: "a.b", ip: "10.123.0.6", filters }),
      vm({ vmId: "a_b", ip: "10.123.0.7", filters }),
      vm({ vmId: 'x" } ; flush ruleset', ip: "10.123.0.8", filters }),
      vm({ vmId: "none", ip: "10.123.0.9" }),
    ]);
    expect([...names.values()].map((n) => n.in)).toEqual(["vm_in_a_b", "vm_in_a_b_2", "vm_in_a_b_3", "vm_in_x______flush_ruleset"]);
    expect(names.has("none")).toBe(false);
    for (const n of names.values()) expect(n.out).toMatch(/^vm_out_[A-Za-z0-9_]+$/);
  });

  it("uses the same names in the rendered script", () => {
    const script = renderRuleset(net, [vm({ vmId: "a-b", ip: "10.123.0.5", filters }), vm({ vmId: "a.b", ip: "10.123.0.6", filters })]);
    expect(script).toContain("ip daddr 10.123.0.5 jump vm_in_a_b\n");
    expect(script).toContain("ip daddr 10.123.0.6 jump vm_in_a_b_2\n");
    expect(script).toContain("chain vm_in_a_b_2 {");
  });
});
