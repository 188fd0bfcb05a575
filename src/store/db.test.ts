import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MIGRATIONS } from "./migrations.js";
import { dataVersion, migrate, openDb, prepared } from "./db.js";
import { GroupMemberRepo } from "./group-members.js";

describe("migrations", () => {
  it("are numbered 1..n without gaps", () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  });
  it("apply once, survive reopening, and each one runs on the schema before it", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-db-")), "batu.db");
    const db = openDb(path);
    expect(migrate(db, MIGRATIONS)).toEqual([]);
    db.close();
    const again = openDb(path);
    const versions = (again.prepare("SELECT version FROM schema_migrations").all() as { version: number }[]).map((r) => r.version);
    expect(versions).toEqual(MIGRATIONS.map((m) => m.version));
    again.close();
    for (let n = 1; n <= MIGRATIONS.length; n++) {
      const step = openDb(":memory:", MIGRATIONS.slice(0, n));
      step.close();
    }
  });
});

describe("dataVersion", () => {
  it("changes when another connection commits, not for this connection's own writes", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-db-")), "batu.db");
    const a = openDb(path);
    const b = openDb(path);
    const v0 = dataVersion(a);
    a.exec("CREATE TABLE t (x)");
    a.exec("INSERT INTO t VALUES (1)");
    expect(dataVersion(a)).toBe(v0);
    b.exec("INSERT INTO t VALUES (2)");
    const v1 = dataVersion(a);
    expect(v1).not.toBe(v0);
    expect(dataVersion(a)).toBe(v1);
    a.close();
    b.close();
  });
});

describe("prepared", () => {
  it("compiles a statement once per database and text", () => {
    const a = openDb(":memory:");
    const b = openDb(":memory:");
    const sql = "SELECT version FROM schema_migrations WHERE version = ?";
    expect(prepared(a, sql)).toBe(prepared(a, sql));
    expect(prepared(b, sql)).not.toBe(prepared(a, sql));
    expect(prepared(a, `${sql} `)).not.toBe(prepared(a, sql));
    expect(prepared(a, sql).get(1)).toEqual({ version: 1 });
  });
});

describe("GroupMemberRepo", () => {
  const t0 = new Date("2026-01-01T00:00:00Z");
  const t1 = new Date("2026-01-01T00:01:00Z");
  it("re-joining by node id updates the record and moves the address", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64), nickname: "one" }, t0);
    repo.upsert({ address: "10.0.0.2:10000", nodeId: "a".repeat(64) }, t1);
    expect(repo.list()).toEqual([
      {
        address: "10.0.0.2:10000",
        nodeId: "a".repeat(64),
        nickname: "one",
        state: "alive",
        joinedAt: t0.toISOString(),
        lastSeen: t1.toISOString(),
        capacity: null,
        vmCount: null,
      },
    ]);
  });
  it("a heartbeat updates a known member's address, capacity and last_seen; unknown nodes are not added", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64) }, t0);
    repo.upsert({ address: "10.0.0.9:10000" }, t0);
    const capacity = { cpu_threads: 8, vm_count: 2 };
    // Moving onto the address a stale record holds: that record gives way.
    expect(repo.heartbeat("a".repeat(64), { address: "10.0.0.9:10000", nickname: "n", capacity, vmCount: 2 }, t1)).toBe(true);
    expect(repo.list()).toEqual([
      expect.objectContaining({ address: "10.0.0.9:10000", nickname: "n", lastSeen: t1.toISOString(), capacity, vmCount: 2 }),
    ]);
    expect(repo.heartbeat("b".repeat(64), { address: "10.0.0.3:10000", nickname: "", capacity, vmCount: 0 }, t1)).toBe(false);
    expect(repo.list()).toHaveLength(1);
  });
  it("remove by node id or by address; the removed record is returned once", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64) }, t0);
    repo.upsert({ address: "10.0.0.2:10000" }, t0);
    expect(repo.remove({ nodeId: "a".repeat(64) })?.address).toBe("10.0.0.1:10000");
    expect(repo.remove({ nodeId: "a".repeat(64) })).toBeUndefined();
    expect(repo.remove({ address: "10.0.0.2:10000" })?.nodeId).toBeNull();
    expect(repo.list()).toEqual([]);
  });
  it("a node taking over an address replaces the stale record there", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64) }, t0);
    repo.upsert({ address: "10.0.0.2:10000", nodeId: "b".repeat(64) }, t0);
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "b".repeat(64) }, t1);
    expect(repo.list().map((m) => [m.address, m.nodeId])).toEqual([["10.0.0.1:10000", "b".repeat(64)]]);
  });
  it("members without a node id are keyed by address", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000" }, t0);
    repo.upsert({ address: "10.0.0.1:10000", nickname: "x" }, t1);
    expect(repo.list()).toHaveLength(1);
    expect(repo.list()[0]!.nickname).toBe("x");
  });
});
