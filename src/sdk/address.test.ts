import { describe, expect, it } from "vitest";
import { normalizeAddress, seedAddress } from "./address.js";

describe("addresses", () => {
  it("adds seed 000's port 10000 to a bare host", () => {
    expect(normalizeAddress("192.168.1.44")).toBe("192.168.1.44:10000");
    expect(normalizeAddress("192.168.1.44:10001")).toBe("192.168.1.44:10001");
    expect(normalizeAddress("http://host:5/")).toBe("host:5");
    expect(normalizeAddress("fe80::1")).toBe("[fe80::1]:10000");
    expect(normalizeAddress("[fe80::1]:7")).toBe("[fe80::1]:7");
  });
  it("writes the seed's bare form for the default port", () => {
    expect(seedAddress("10.0.0.1:10000")).toBe("10.0.0.1");
    expect(seedAddress("10.0.0.1:10001")).toBe("10.0.0.1:10001");
  });
});
