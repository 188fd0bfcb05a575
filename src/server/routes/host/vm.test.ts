import { describe, expect, it } from "vitest";
import { asciiJson } from "./vm.js";

describe("asciiJson (a header's JSON)", () => {
  it("escapes every non-ASCII character and parses back to the same value", () => {
    const value = [{ node_id: "n1", reason: "член группы недоступен: 超时 ✓ 🚀" }];
    const text = asciiJson(value);
    expect(text).toMatch(/^[\x20-\x7e]*$/);
    expect(JSON.parse(text)).toEqual(value);
    // What Node accepts as a header value.
    expect(() => new Headers({ "x-batu-unreachable": text })).not.toThrow();
  });
});
