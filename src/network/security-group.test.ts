import { describe, expect, it } from "vitest";
import { FieldError } from "../vm/create-request.js";
import type { SecurityRule } from "./model.js";
import { MAX_SECURITY_RULES, formatNetworkFilters, parseNetworkFilters } from "./security-group.js";

function refusal(rules: unknown, field?: string): FieldError {
  try {
    parseNetworkFilters(rules, field);
  } catch (e) {
    expect(e).toBeInstanceOf(FieldError);
    return e as FieldError;
  }
  throw new Error("expected a FieldError");
}

const normalized = (rules: unknown): string[] => formatNetworkFilters(parseNetworkFilters(rules));

describe("parseNetworkFilters", () => {
  it("means no security group for undefined, null and []", () => {
    expect(parseNetworkFilters(undefined)).toBeNull();
    expect(parseNetworkFilters(null)).toBeNull();
    expect(parseNetworkFilters([])).toBeNull();
  });

  it("parses DBC's example into rules that keep the renter's text", () => {
    const rules = parseNetworkFilters(["in,tcp,22,0.0.0.0/0,accept", "in,udp,1000-2000,10.1.2.3/8,drop"]);
    expect(rules).toEqual<SecurityRule[]>([
      { direction: "in", protocol: "tcp", ports: { from: 22, to: 22 }, cidr: "0.0.0.0/0", action: "accept", text: "in,tcp,22,0.0.0.0/0,accept" },
      { direction: "in", protocol: "udp", ports: { from: 1000, to: 2000 }, cidr: "10.0.0.0/8", action: "drop", text: "in,udp,1000-2000,10.1.2.3/8,drop" },
    ]);
  });

  it("is case-insensitive and trims whitespace", () => {
    const rules = parseNetworkFilters(["  IN , TCP , 22 , 192.168.1.7/24 , Accept "]);
    expect(formatNetworkFilters(rules)).toEqual(["in,tcp,22,192.168.1.0/24,accept"]);
    expect(rules?.[0]?.text).toBe("  IN , TCP , 22 , 192.168.1.7/24 , Accept ");
  });

  it.each([
    ["ssh", "tcp", 22],
    ["rdp", "tcp", 3389],
    ["http", "tcp", 80],
    ["https", "tcp", 443],
    ["ftp", "tcp", 21],
    ["dns(udp)", "udp", 53],
    ["dns(tcp)", "tcp", 53],
    ["DNS(UDP)", "udp", 53],
  ])("maps DBC's named protocol %s to %s port %i", (name, proto, port) => {
    expect(normalized([`inout,${name},all,0.0.0.0/0,accept`])).toEqual([`inout,${proto},${port},0.0.0.0/0,accept`]);
    expect(normalized([`inout,${name},${port},0.0.0.0/0,accept`])).toEqual([`inout,${proto},${port},0.0.0.0/0,accept`]);
  });

  it("reads ports: all, one, a range, and a one-port range", () => {
    expect(normalized(["out,tcp,all,0.0.0.0/0,drop", "out,udp,53,8.8.8.8,accept", "in,tcp,80-90,1.2.3.4/32,accept", "in,tcp,7-7,0.0.0.0/0,accept"])).toEqual([
      "out,tcp,all,0.0.0.0/0,drop",
      "out,udp,53,8.8.8.8/32,accept",
      "in,tcp,80-90,1.2.3.4/32,accept",
      "in,tcp,7,0.0.0.0/0,accept",
    ]);
    expect(parseNetworkFilters(["out,tcp,all,0.0.0.0/0,drop"])?.[0]?.ports).toBeNull();
    expect(parseNetworkFilters(["in,icmp,all,0.0.0.0/0,drop"])?.[0]).toMatchObject({ protocol: "icmp", ports: null });
    expect(normalized(["in,tcp,1-65535,0.0.0.0/0,accept"])).toEqual(["in,tcp,1-65535,0.0.0.0/0,accept"]);
  });

  it("normalizes a CIDR to its network address, and a bare address to /32", () => {
    expect(normalized(["in,all,all,10.1.2.3/8,drop"])).toEqual(["in,all,all,10.0.0.0/8,drop"]);
    expect(normalized(["in,all,all,172.16.99.1/12,drop"])).toEqual(["in,all,all,172.16.0.0/12,drop"]);
    expect(normalized(["in,all,all,1.2.3.4/0,drop"])).toEqual(["in,all,all,0.0.0.0/0,drop"]);
    expect(normalized(["in,all,all,255.255.255.255,drop"])).toEqual(["in,all,all,255.255.255.255/32,drop"]);
    expect(normalized(["in,all,all,192.168.1.129/25,drop"])).toEqual(["in,all,all,192.168.1.128/25,drop"]);
  });

  it("moves the catch-all accepts, then the catch-all drops, after the other rules (DBC's order)", () => {
    const given = [
      "in,all,all,0.0.0.0/0,drop", // catch-all drop, written first
      "in,tcp,22,0.0.0.0/0,accept",
      "out,all,all,0.0.0.0/0,accept", // catch-all accept
      "in,tcp,80,10.0.0.0/8,drop",
      "inout,all,all,0.0.0.0/0,drop",
      "in,all,all,10.0.0.0/8,accept", // not a catch-all: a CIDR
      "in,all,all,0.0.0.0/0,accept",
    ];
    expect(normalized(given)).toEqual([
      "in,tcp,22,0.0.0.0/0,accept",
      "in,tcp,80,10.0.0.0/8,drop",
      "in,all,all,10.0.0.0/8,accept",
      "out,all,all,0.0.0.0/0,accept",
      "in,all,all,0.0.0.0/0,accept",
      "in,all,all,0.0.0.0/0,drop",
      "inout,all,all,0.0.0.0/0,drop",
    ]);
  });

  it("gives the same rules back when its own output is parsed again", () => {
    const first = parseNetworkFilters(["in,ssh,all,1.2.3.4/16,accept", "out,all,all,0.0.0.0/0,accept", "inout,udp,5-9,9.9.9.9,drop"]);
    const again = parseNetworkFilters(formatNetworkFilters(first));
    const withoutText = (rules: SecurityRule[] | null) => rules?.map(({ text: _text, ...rest }) => rest);
    expect(withoutText(again)).toEqual(withoutText(first));
  });

  it("accepts 64 rules", () => {
    expect(parseNetworkFilters(Array.from({ length: MAX_SECURITY_RULES }, (_, i) => `in,tcp,${i + 1},0.0.0.0/0,accept`))).toHaveLength(64);
  });

  it.each<[unknown, string]>([
    ["in,tcp,22,0.0.0.0/0,accept", 'network_filters: must be an array of rules, each expected "direction,protocol,port,cidr,action", e.g. "in,tcp,22,0.0.0.0/0,accept"'],
    [{ 0: "in,tcp,22,0.0.0.0/0,accept" }, "network_filters: must be an array"],
    [["in,tcp,22,0.0.0.0/0,accept", 22], "network_filters: rule 2 is not a string"],
    [["in,tcp,99999,0.0.0.0/0,accept"], 'network_filters: rule 1 "in,tcp,99999,0.0.0.0/0,accept": port 99999 is not in 1-65535'],
    [["in,tcp,22,0.0.0.0/0,accept", "in,tcp,99999,0.0.0.0/0,accept"], 'network_filters: rule 2 "in,tcp,99999,0.0.0.0/0,accept": port 99999 is not in 1-65535'],
    [["in,tcp,0,0.0.0.0/0,accept"], "port 0 is not in 1-65535"],
    [["in,tcp,,0.0.0.0/0,accept"], 'port "" is not a number, a range N-M or "all"'],
    [["in,tcp,22a,0.0.0.0/0,accept"], 'port "22a" is not a number'],
    [["in,tcp,-5,0.0.0.0/0,accept"], 'port "" is not a number'],
    [["in,tcp,1-2-3,0.0.0.0/0,accept"], 'port "1-2-3" is not a number'],
    [["in,tcp,90-80,0.0.0.0/0,accept"], "port range 90-80 is reversed (90 > 80)"],
    [["in,tcp,80-70000,0.0.0.0/0,accept"], "port 70000 is not in 1-65535"],
    [["in,all,22,0.0.0.0/0,accept"], 'port must be "all" for protocol all'],
    [["in,icmp,8,0.0.0.0/0,accept"], 'port must be "all" for protocol icmp'],
    [["in,ssh,2222,0.0.0.0/0,accept"], 'protocol ssh means tcp port 22; port must be "all" or 22'],
    [["in,ssh,x,0.0.0.0/0,accept"], 'port "x" is not a number'],
    [["in,sctp,22,0.0.0.0/0,accept"], 'protocol "sctp" is not one of all, tcp, udp, icmp, ssh, rdp, http, https, ftp, dns(udp), dns(tcp)'],
    [["up,tcp,22,0.0.0.0/0,accept"], 'direction "up" is not one of in, out, inout'],
    [["in,tcp,22,0.0.0.0/0,allow"], 'action "allow" is not one of accept, drop'],
    [["in,tcp,22,0.0.0.0/0"], 'rule 1 "in,tcp,22,0.0.0.0/0": expected "direction,protocol,port,cidr,action", e.g. "in,tcp,22,0.0.0.0/0,accept" (got 4 fields)'],
    [["in,tcp,22,0.0.0.0/0,accept,"], "(got 6 fields)"],
    [[""], 'rule 1 "": expected "direction,protocol,port,cidr,action", e.g. "in,tcp,22,0.0.0.0/0,accept" (got 1 field)'],
    [["in,tcp,22,256.0.0.0/8,accept"], 'cidr "256.0.0.0/8" is not an IPv4 address or network a.b.c.d/n'],
    [["in,tcp,22,10.0.0/8,accept"], 'cidr "10.0.0/8" is not an IPv4'],
    [["in,tcp,22,010.0.0.1,accept"], 'cidr "010.0.0.1" is not an IPv4'],
    [["in,tcp,22,::1/128,accept"], 'cidr "::1/128" is not an IPv4'],
    [["in,tcp,22,10.0.0.0/33,accept"], 'cidr "10.0.0.0/33" has a mask that is not in 0-32'],
    [["in,tcp,22,10.0.0.0/,accept"], 'cidr "10.0.0.0/" has a mask that is not in 0-32'],
    [["in,tcp,22,10.0.0.0/8/8,accept"], 'cidr "10.0.0.0/8/8" has a mask that is not in 0-32'],
    [
      Array.from({ length: MAX_SECURITY_RULES + 1 }, () => "in,tcp,22,0.0.0.0/0,accept"),
      "network_filters: at most 64 rules are allowed (got 65)",
    ],
  ])("refuses %j", (rules, message) => {
    const e = refusal(rules);
    expect(e.field).toBe("network_filters");
    expect(e.message).toContain(message);
  });

  it("names the field it was given", () => {
    const e = refusal(["in,tcp,99999,0.0.0.0/0,accept"], "new_network_filters");
    expect(e.field).toBe("new_network_filters");
    expect(e.message).toBe('new_network_filters: rule 1 "in,tcp,99999,0.0.0.0/0,accept": port 99999 is not in 1-65535');
  });

  it("does not take an inherited property for a named protocol", () => {
    expect(refusal(["in,constructor,all,0.0.0.0/0,accept"]).message).toContain('protocol "constructor" is not one of');
  });
});

describe("formatNetworkFilters", () => {
  it("gives [] for no security group", () => {
    expect(formatNetworkFilters(null)).toEqual([]);
  });
});
