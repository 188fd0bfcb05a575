import { mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sweepImageCache } from "./cache-cleaner.js";

let cache: string;
const DAY = 86_400_000;
const now = new Date("2026-11-30T12:00:00Z");
/** An image of `mib` MiB pulled `daysAgo` days before `now`. */
function image(name: string, mib: number, daysAgo: number, owner?: string): void {
  writeFileSync(join(cache, name), Buffer.alloc(mib * 2 ** 20));
  if (owner) writeFileSync(join(cache, name.replace(/\.qcow2$/, ".json")), JSON.stringify({ owner }));
  const t = new Date(now.getTime() - daysAgo * DAY);
  utimesSync(join(cache, name), t, t);
}

beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), "batu-cache-"));
});
afterEach(() => rmSync(cache, { recursive: true, force: true }));

describe("the image cache's sweep", () => {
  it("removes old, unused operator images, oldest first, only until the free-space floor is met", async () => {
    image("oldest.qcow2", 2, 30);
    image("older.qcow2", 2, 20);
    image("old.qcow2", 2, 10);
    image("recent.qcow2", 2, 1);
    image("in-use.qcow2", 2, 40);
    image("renters.qcow2", 2, 50, "alice");
    const free = 1 * 2 ** 20;
    const removed = await sweepImageCache({
      cache,
      freeBytes: async () => free,
      minFreeBytes: 4 * 2 ** 20,
      keepDays: 7,
      inUse: (n) => (n === "in-use.qcow2" ? "the image of task t1" : undefined),
      transferring: () => false,
      now: () => now,
    });
    // 1 MiB free, 4 wanted: two 2 MiB images go, the oldest ones no task uses and no renter owns.
    expect(removed).toEqual(["oldest.qcow2", "older.qcow2"]);
    for (const kept of ["old.qcow2", "recent.qcow2", "in-use.qcow2", "renters.qcow2"]) expect(existsSync(join(cache, kept))).toBe(true);
  });

  it("does nothing while the disk has room", async () => {
    image("oldest.qcow2", 1, 30);
    expect(await sweepImageCache({ cache, freeBytes: async () => 2 ** 40, minFreeBytes: 2 ** 30, keepDays: 7, inUse: () => undefined, transferring: () => false, now: () => now })).toEqual([]);
  });
});
