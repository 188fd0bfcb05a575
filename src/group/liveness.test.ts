import { describe, expect, it } from "vitest";
import { memberState } from "./liveness.js";

const times = { suspectAfterMs: 1000, deadAfterMs: 5000 };
const t0 = new Date("2025-01-01T00:00:00Z");
const at = (ms: number) => new Date(t0.getTime() + ms);

describe("memberState", () => {
  it("alive, then suspect, then dead as silence grows", () => {
    expect(memberState(t0, at(999), times)).toBe("alive");
    expect(memberState(t0, at(1000), times)).toBe("suspect");
    expect(memberState(t0, at(4999), times)).toBe("suspect");
    expect(memberState(t0, at(5000), times)).toBe("dead");
  });

  it("counts silence from the master's start when that is later", () => {
    expect(memberState(t0, at(60_000), times, at(59_500))).toBe("alive");
    expect(memberState(t0, at(60_000), times, at(58_000))).toBe("suspect");
  });
});
