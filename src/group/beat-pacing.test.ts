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

  it("staggers each wait told by a quarter either way, the rate bound holding on average", () => {
    const waits = [0, 0.5, 0.999999].map((r) => new BeatPacer(100, () => r).next(1000, 0));
    expect(waits).toEqual([7_500, 10_000, 12_500]);
    const pacer = new BeatPacer(100);
    const told = Array.from({ length: 2000 }, () => pacer.next(1000, 0));
    expect(Math.min(...told)).toBeGreaterThanOrEqual(7_500);
    expect(Math.max(...told)).toBeLessThanOrEqual(12_500);
    const mean = told.reduce((a, b) => a + b, 0) / told.length;
    expect(mean).toBeGreaterThan(9_800);
    expect(mean).toBeLessThan(10_200);
  });

  it("allows for the longest wait it told until that wait has passed, when the group shrinks", () => {
    const pacer = new BeatPacer(100, () => 0.5);
    expect(pacer.next(2000, 0)).toBe(20_000);
    // Half the group is removed: members are told 10 s from now on, but some still wait out up to 25 s.
    expect(pacer.next(1000, 5_000)).toBe(10_000);
    expect(pacer.longestWait(1000, 5_000)).toBe(25_000);
    expect(pacer.longestWait(1000, 24_999)).toBe(25_000);
    expect(pacer.longestWait(1000, 25_000)).toBe(12_500);
    // A growing group's longer wait counts at once.
    expect(pacer.next(3000, 30_000)).toBe(30_000);
    expect(pacer.longestWait(3000, 30_000)).toBe(37_500);
    expect(() => new BeatPacer(0)).toThrow(/maxPerS/);
  });
});
