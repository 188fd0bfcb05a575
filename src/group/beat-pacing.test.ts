import { describe, expect, it } from "vitest";
import { BeatPacer, MAX_PACED_INTERVAL_MS, pacedIntervalMs, pacedLiveness } from "./beat-pacing.js";
import { DEFAULT_LIVENESS } from "./liveness.js";

describe("heartbeat pacing", () => {
  it("spreads a group's beats so that at most maxPerS arrive a second, up to the longest wait", () => {
    expect(pacedIntervalMs(0, 100)).toBe(0);
    expect(pacedIntervalMs(5, 100)).toBe(50);
    expect(pacedIntervalMs(1000, 100)).toBe(10_000);
    expect(pacedIntervalMs(1001, 100)).toBe(10_010);
    expect(pacedIntervalMs(50_000, 100)).toBe(MAX_PACED_INTERVAL_MS);
  });

  it("keeps the configured liveness times up to a 3 s wait, and stretches them in proportion beyond", () => {
    expect(pacedLiveness(DEFAULT_LIVENESS, 50)).toBe(DEFAULT_LIVENESS);
    expect(pacedLiveness(DEFAULT_LIVENESS, 3000)).toBe(DEFAULT_LIVENESS);
    expect(pacedLiveness(DEFAULT_LIVENESS, 10_000)).toEqual({ suspectAfterMs: 33_333, deadAfterMs: 200_000 });
  });

  it("allows for a longer wait it told members until that wait has passed, when the group shrinks", () => {
    const pacer = new BeatPacer(100);
    expect(pacer.next(2000, 0)).toBe(20_000);
    // Half the group is removed: members are told 10 s from now on, but some still wait out 20 s.
    expect(pacer.next(1000, 5_000)).toBe(10_000);
    expect(pacer.longestWait(1000, 5_000)).toBe(20_000);
    expect(pacer.longestWait(1000, 19_999)).toBe(20_000);
    expect(pacer.longestWait(1000, 20_000)).toBe(10_000);
    // A growing group's longer wait counts at once.
    expect(pacer.next(3000, 30_000)).toBe(30_000);
    expect(pacer.longestWait(3000, 30_000)).toBe(30_000);
    expect(() => new BeatPacer(0)).toThrow(/maxPerS/);
  });
});
