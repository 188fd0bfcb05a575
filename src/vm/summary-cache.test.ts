import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb, type Db } from "../store/db.js";
import { VmRepo } from "./repo.js";
import { SummaryCache } from "./summary-cache.js";
import { testSpec as spec } from "./testing.js";

function seeded(db: Db = openDb(":memory:")) {
  let t = Date.parse("2026-01-01T00:00:00Z");
  const repo = new VmRepo(db, () => new Date((t += 1000)));
  const add = (id: string, owner: string) => repo.insert({ id, nickname: "", owner, spec: spec(`task ${id}`), status: "closed" }, []);
  add("a1", "alice");
  add("a2", "alice");
  add("b1", "bob");
  return { db, repo, add };
}

const ids = (list: readonly { id: string }[]) => list.map((s) => s.id);

describe("SummaryCache", () => {
  it("answers the repo's summaries, the same frozen array while nothing changed", () => {
    const { repo } = seeded();
    const cache = new SummaryCache(repo);
    const first = cache.summariesFor("alice");
    expect(first).toEqual(repo.summariesByOwner("alice"));
    expect(cache.summariesFor("alice")).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first[0])).toBe(true);
  });

  it("keeps each renter's list apart", () => {
    const { repo } = seeded();
    const cache = new SummaryCache(repo);
    const alice = cache.summariesFor("alice");
    const bob = cache.summariesFor("bob");
    expect(ids(alice)).toEqual(["a1", "a2"]);
    expect(ids(bob)).toEqual(["b1"]);
    expect(cache.summariesFor("carol")).toEqual([]);
    expect(cache.summariesFor("alice")).toBe(alice);
    expect(cache.summariesFor("bob")).toBe(bob);
  });

  it("reads again after any write to vms: status, create, delete, spec (desc), disk size", () => {
    const { repo, add } = seeded();
    const cache = new SummaryCache(repo);
    const writes: Array<[string, () => void, (list: readonly { id: string; status: string; desc: string }[]) => void]> = [
      ["status", () => repo.update("a1", { status: "running" }), (l) => expect(l[0]!.status).toBe("running")],
      ["create", () => add("a3", "alice"), (l) => expect(ids(l)).toEqual(["a1", "a2", "a3"])],
      ["delete", () => repo.delete("a2"), (l) => expect(ids(l)).toEqual(["a1", "a3"])],
      ["desc", () => repo.update("a1", { spec: spec("renamed") }), (l) => expect(l[0]!.desc).toBe("renamed")],
      ["ready", () => repo.update("a1", { ready: true }), () => undefined],
      ["disk size", () => repo.setSystemDiskBytes("a1", 2 ** 30), () => undefined],
    ];
    for (const [what, write, check] of writes) {
      const before = cache.summariesFor("alice");
      write();
      const after = cache.summariesFor("alice");
      expect(after, what).not.toBe(before);
      expect(after, what).toEqual(repo.summariesByOwner("alice"));
      check(after);
    }
  });

  it("sees a write through another repo on the same database", () => {
    const { db, repo } = seeded();
    const cache = new SummaryCache(repo);
    const before = cache.summariesFor("alice");
    new VmRepo(db).update("a2", { status: "running" });
    expect(cache.summariesFor("alice")).not.toBe(before);
    expect(cache.summariesFor("alice")[1]!.status).toBe("running");
  });

  it("sees a commit by another connection to the file", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-summaries-")), "batu.db");
    const { db, repo } = seeded(openDb(path));
    const cache = new SummaryCache(repo);
    const before = cache.summariesFor("alice");
    const other = openDb(path);
    other.prepare("UPDATE vms SET status = 'running' WHERE id = 'a1'").run();
    other.close();
    expect(cache.summariesFor("alice")).not.toBe(before);
    expect(cache.summariesFor("alice")[0]!.status).toBe("running");
    db.close();
  });

  it("holds at most maxOwners renters, dropping the least recently used", () => {
    const { repo, add } = seeded();
    add("c1", "carol");
    let reads = 0;
    const counted = { version: () => repo.version(), summariesByOwner: (o: string) => (reads++, repo.summariesByOwner(o)) };
    const cache = new SummaryCache(counted, 2);
    const alice = cache.summariesFor("alice");
    const bob = cache.summariesFor("bob");
    expect(cache.summariesFor("alice")).toBe(alice); // alice is now the most recent
    expect(reads).toBe(2);
    const carol = cache.summariesFor("carol"); // bob goes
    expect(cache.size).toBe(2);
    expect(cache.summariesFor("alice")).toBe(alice);
    expect(cache.summariesFor("bob")).not.toBe(bob); // read again; carol goes
    expect(cache.summariesFor("carol")).not.toBe(carol);
    expect(cache.size).toBe(2);
    expect(reads).toBe(5);
    expect(() => new SummaryCache(repo, 0)).toThrow(/positive integer/);
  });
});
