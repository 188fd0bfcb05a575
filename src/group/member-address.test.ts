import { describe, expect, it } from "vitest";
import { checkedMemberAddress } from "./member-address.js";

describe("checkedMemberAddress", () => {
  it("is the caller's own IP with the port it states, or seed 000's default port", () => {
    expect(checkedMemberAddress("10.0.0.5:10001", "10.0.0.5")).toBe("10.0.0.5:10001");
    expect(checkedMemberAddress("10.0.0.5", "::ffff:10.0.0.5")).toBe("10.0.0.5:10000");
    expect(checkedMemberAddress(undefined, "::ffff:10.0.0.5")).toBe("10.0.0.5:10000");
    expect(checkedMemberAddress("[fd00::5]:10000", "fd00::5")).toBe("[fd00::5]:10000");
  });

  it("refuses another host (SSRF through the master's relay), and a port out of range, naming address", () => {
    expect(() => checkedMemberAddress("127.0.0.1:22", "10.0.0.5")).toThrow(/^address: a member registers the address it calls from \(10\.0\.0\.5\)/);
    expect(() => checkedMemberAddress("10.0.0.6:10000", "10.0.0.5")).toThrow(/address/);
    expect(() => checkedMemberAddress("10.0.0.5:99999", "10.0.0.5")).toThrow("address: port 99999 is not 1-65535");
    expect(() => checkedMemberAddress("10.0.0.5:0", "10.0.0.5")).toThrow(/not 1-65535/);
  });

  it("lets the operator record any host", () => {
    expect(checkedMemberAddress("10.1.2.3:10000", "127.0.0.1", true)).toBe("10.1.2.3:10000");
    expect(() => checkedMemberAddress("10.1.2.3:70000", "127.0.0.1", true)).toThrow(/not 1-65535/);
  });
});
