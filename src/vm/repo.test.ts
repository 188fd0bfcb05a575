import { describe, expect, it } from "vitest";
import { migrate, openDb, type Db } from "../store/db.js";
import { MIGRATIONS } from "../store/migrations.js";
import { VmRepo } from "./repo.js";
import { testSpec as spec } from "./testing.js";

/** A repo whose clock ticks a second per call, so creation order is time order. */
function repoAt(db: Db): VmRepo {
  let t = Date.parse("2026-01-01T00:00:00Z");
  return new VmRepo(db, () => new Date((t += 1000)));
}

describe("VmRepo by owner", () => {
  it("lists one owner's VMs oldest first; summaries carry only what a list shows", () => {
    const repo = repoAt(openDb(":memory:"));
    for (const [id, owner] of [["b1", "bob"], ["a1", "alice"], ["op", null], ["a2", "alice"]] as const) {
      repo.insert({ id, nickname: "", owner, spec: spec(`task ${id}`), status: "closed" }, []);
    }
    expect(repo.listByOwner("alice").map((v) => v.id)).toEqual(["a1", "a2"]);
    expect(repo.listByOwner("carol")).toEqual([]);
    const a1 = repo.get("a1")!;
    expect(repo.summariesByOwner("alice")).toEqual([
      { id: "a1", taskId: "a1", createdAt: a1.createdAt, status: "closed", desc: "task a1" },
      { id: "a2", taskId: "a2", createdAt: repo.get("a2")!.createdAt, status: "closed", desc: "task a2" },
    ]);
    expect(repo.ownedBy("a1", "alice")).toBe(true);
    expect(repo.ownedBy("b1", "alice")).toBe(false);
    expect(repo.ownedBy("op", "alice")).toBe(false);
    expect(repo.ownedBy("nope", "alice")).toBe(false);
  });

  it("reads a renter's VMs through the owner index, in order, without a sort", () => {
    const db = openDb(":memory:");
    const plan = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all("alice") as { detail: string }[]).map((r) => r.detail).join("; ");
    const list = plan("SELECT * FROM vms WHERE owner = ? ORDER BY created_at, id");
    expect(list).toMatch(/USING INDEX vms_by_owner \(owner=\?\)/);
    expect(list).not.toMatch(/TEMP B-TREE/);
  });
});

describe("the lifecycle log", () => {
  it("outlives its VM, but a new VM given the same id starts with an empty log (never another renter's lines)", () => {
    const repo = repoAt(openDb(":memory:"));
    repo.insert({ id: "t1", nickname: "", owner: "alice", spec: spec("alice's"), status: "closed" }, []);
    repo.log("t1", "alice's secret step");
    repo.delete("t1");
    expect(repo.logLines("t1", { from: "head", count: 10 })).toHaveLength(1);
    repo.insert({ id: "t1", nickname: "", owner: "bob", spec: spec("bob's"), status: "closed" }, []);
    expect(repo.logLines("t1", { from: "head", count: 10 })).toEqual([]);
  });
});

describe("system disk size", () => {
  it("is null for VMs recorded before migration 4, and set without touching updated_at", () => {
    const db = openDb(":memory:", MIGRATIONS.slice(0, 3));
    db.prepare(
      `INSERT INTO vms (id, owner, image_name, spec_json, status, created_at, updated_at)
       VALUES ('old', 'alice', 'x', ?, 'closed', '2025-01-01T00:00:00.000Z', '2025-01-02T00:00:00.000Z')`,
    ).run(JSON.stringify(spec("old one")));
    expect(migrate(db, MIGRATIONS)).toEqual(MIGRATIONS.slice(3).map((m) => m.version));
    const repo = new VmRepo(db);
    expect(repo.get("old")).toMatchObject({ systemDiskBytes: null, updatedAt: "2025-01-02T00:00:00.000Z" });
    repo.setSystemDiskBytes("old", 20 * 2 ** 30);
    expect(repo.get("old")).toMatchObject({ systemDiskBytes: 20 * 2 ** 30, updatedAt: "2025-01-02T00:00:00.000Z" });
    repo.setSystemDiskBytes("old", null);
    expect(repo.get("old")!.systemDiskBytes).toBeNull();
  });
});
