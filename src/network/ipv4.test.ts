import { describe, expect, it } from "vitest";
import { inSubnet, lowestFree, parseSubnet } from "./ipv4.js";

describe("ipv4 subnets", () => {
  it("parses a subnet into its gateway and guest range", () => {
    expect(parseSubnet("10.123.0.0/24")).toEqual({ network: "10.123.0.0", prefix: 24, netmask: "255.255.255.0", gateway: "10.123.0.1", first: "10.123.0.2", last: "10.123.0.254" });
    expect(parseSubnet("10.8.0.0/16")?.last).toBe("10.8.255.254");
  });

  it("refuses what is not a network address or too small/large", () => {
    for (const bad of ["10.123.0.1/24", "10.123.0.0/30", "10.0.0.0/7", "300.1.1.0/24", "10.1.0.0", "x/24"]) expect(parseSubnet(bad)).toBeNull();
  });

  it("hands out the lowest free address and tells membership", () => {
    const s = parseSubnet("192.168.66.0/29")!;
    expect(lowestFree(s, new Set())).toBe("192.168.66.2");
    expect(lowestFree(s, new Set(["192.168.66.2", "192.168.66.3"]))).toBe("192.168.66.4");
    expect(lowestFree(s, new Set(["192.168.66.2", "192.168.66.3", "192.168.66.4", "192.168.66.5", "192.168.66.6"]))).toBeNull();
    expect(inSubnet("192.168.66.7", s)).toBe(true);
    expect(inSubnet("192.168.67.1", s)).toBe(false);
  });
});
