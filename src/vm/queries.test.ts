import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb, type Db } from "../store/db.js";
import { VmNotFoundError } from "./errors.js";
import { VmRepo } from "./repo.js";
import { readOnlyVms, testSpec as spec } from "./testing.js";

function seeded(db?: Db) {
  let t = Date.parse("2026-01-01T00:00:00Z");
  const { repo, queries } = readOnlyVms(db, () => new Date((t += 1000)));
  const add = (id: string, owner: string) => repo.insert({ id, nickname: "", owner, spec: spec(`task ${id}`), status: "closed" }, []);
  add("a1", "alice");
  add("a2", "alice");
  add("b1", "bob");
  return { repo, queries, add };
}

const ids = (list: readonly { id: string }[]) => list.map((s) => s.id);

describe("VmQueries.cache (what a face derives from the vms table)", () => {
  /** alice's list through a cache, as the task list reply keeps it. */
  const keptList = (queries: ReturnType<typeof seeded>["queries"]) => {
    const cache = queries.cache<readonly { id: string; status: string; desc: string }[]>(8);
    return () => cache.get("alice", () => queries.summariesFor("alice"));
  };

  it("answers the same value while nothing changed; each renter's apart", () => {
    const { repo, queries } = seeded();
    const alice = keptList(queries);
    const first = alice();
    expect(first).toEqual(repo.summariesByOwner("alice"));
    expect(alice()).toBe(first);
    expect(ids(first)).toEqual(["a1", "a2"]);
    expect(ids(queries.summariesFor("bob"))).toEqual(["b1"]);
    expect(queries.summariesFor("carol")).toEqual([]);
  });

  it("reads again after any write to vms: status, create, delete, spec (desc), ready, disk size", () => {
    const { repo, queries, add } = seeded();
    const alice = keptList(queries);
    const writes: Array<[string, () => void, (list: readonly { id: string; status: string; desc: string }[]) => void]> = [
      ["status", () => repo.update("a1", { status: "running" }), (l) => expect(l[0]!.status).toBe("running")],
      ["create", () => add("a3", "alice"), (l) => expect(ids(l)).toEqual(["a1", "a2", "a3"])],
      ["delete", () => repo.delete("a2"), (l) => expect(ids(l)).toEqual(["a1", "a3"])],
      ["desc", () => repo.update("a1", { spec: spec("renamed") }), (l) => expect(l[0]!.desc).toBe("renamed")],
      ["ready", () => repo.update("a1", { ready: true }), () => undefined],
      ["disk size", () => repo.setSystemDiskBytes("a1", 2 ** 30), () => undefined],
    ];
    for (const [what, write, check] of writes) {
      const before = alice();
      write();
      const after = alice();
      expect(after, what).not.toBe(before);
      expect(after, what).toEqual(repo.summariesByOwner("alice"));
      check(after);
    }
  });

  it("sees a write through another repo on the same connection", () => {
    const db = openDb(":memory:");
    const { queries } = seeded(db);
    const alice = keptList(queries);
    const before = alice();
    new VmRepo(db).update("a2", { status: "running" });
    expect(alice()).not.toBe(before);
    expect(alice()[1]!.status).toBe("running");
  });

  it("sees a commit by another connection to the file (another process, the CLI offline)", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-queries-")), "batu.db");
    const db = openDb(path);
    const { queries } = seeded(db);
    const alice = keptList(queries);
    const before = alice();
    const other = openDb(path);
    other.prepare("UPDATE vms SET status = 'running' WHERE id = 'a1'").run();
    other.close();
    expect(alice()).not.toBe(before);
    expect(alice()[0]!.status).toBe("running");
    db.close();
  });
});

describe("VmQueries.getFor (a renter's task)", () => {
  it("the owner's VM as stored now; another renter's VM is not found", () => {
    const { repo, queries } = seeded();
    expect(queries.getFor("alice", "a1").spec.desc).toBe("task a1");
    expect(() => queries.getFor("bob", "a1")).toThrow(VmNotFoundError);
    expect(() => queries.getFor("alice", "nope")).toThrow(VmNotFoundError);
    repo.update("a1", { status: "running" });
    expect(queries.getFor("alice", "a1").status).toBe("running");
    // A VM created after a miss is found at once.
    repo.insert({ id: "nope", nickname: "", owner: "alice", spec: spec("two"), status: "creating" }, []);
    expect(queries.getFor("alice", "nope").status).toBe("creating");
    repo.delete("a1");
    expect(() => queries.getFor("alice", "a1")).toThrow(VmNotFoundError);
  });

  it("owns: only the owner's VM", () => {
    const { queries } = seeded();
    expect(queries.owns("alice", "a1")).toBe(true);
    expect(queries.owns("bob", "a1")).toBe(false);
    expect(queries.owns("alice", "missing")).toBe(false);
  });
});
