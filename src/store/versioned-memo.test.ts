import { describe, expect, it } from "vitest";
import { VersionedMemo } from "./versioned-memo.js";

describe("VersionedMemo", () => {
  it("keeps each key's answer, an absent one too, while the version is the same; drops all when it moves", () => {
    let version = "1";
    let reads = 0;
    const memo = new VersionedMemo<number | undefined>(() => version, 10);
    const read = (v: number | undefined) => () => (reads++, v);
    expect(memo.get("a", read(1))).toBe(1);
    expect(memo.get("b", read(undefined))).toBeUndefined();
    expect(memo.get("a", read(99))).toBe(1);
    expect(memo.get("b", read(99))).toBeUndefined();
    expect(reads).toBe(2);
    version = "2";
    expect(memo.get("a", read(3))).toBe(3);
    expect(memo.size).toBe(1);
    expect(memo.get("b", read(4))).toBe(4);
    expect(reads).toBe(4);
  });

  it("holds at most maxEntries keys, dropping the least recently used", () => {
    const memo = new VersionedMemo<string>(() => "v", 2);
    memo.get("a", () => "a1");
    memo.get("b", () => "b1");
    memo.get("a", () => "a2"); // a is now the most recent
    memo.get("c", () => "c1"); // b goes
    expect(memo.size).toBe(2);
    expect(memo.get("a", () => "a3")).toBe("a1");
    expect(memo.get("b", () => "b2")).toBe("b2"); // c goes
    expect(memo.get("c", () => "c2")).toBe("c2");
    expect(() => new VersionedMemo(() => "v", 0)).toThrow(/positive integer/);
  });
});
