import { describe, expect, it } from "vitest";
import { bearerToken, newToken, secretEquals } from "./secrets.js";

describe("secrets", () => {
  it("makes distinct 43-character tokens", () => {
    const a = newToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newToken()).not.toBe(a);
  });
  it("compares equal, different and different-length secrets", () => {
    expect(secretEquals("abc", "abc")).toBe(true);
    expect(secretEquals("abd", "abc")).toBe(false);
    expect(secretEquals("abc", "abcd")).toBe(false);
    expect(secretEquals("", "abc")).toBe(false);
  });
  it("reads bearer tokens only", () => {
    expect(bearerToken("Bearer xyz")).toBe("xyz");
    expect(bearerToken("bearer xyz ")).toBe("xyz");
    expect(bearerToken("Basic xyz")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
