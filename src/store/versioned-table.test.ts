import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb } from "./db.js";
import { VersionedTable } from "./versioned-table.js";

describe("VersionedTable", () => {
  it("moves with a write of that table through any of its wrappers, and with any commit by another connection", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-db-")), "batu.db");
    const a = openDb(path);
    const b = openDb(path);
    const vms = new VersionedTable(a, "vms");
    const v0 = vms.version();
    expect(vms.version()).toBe(v0);
    new VersionedTable(a, "rentals").write(() => undefined);
    expect(vms.version()).toBe(v0);
    // A second repository of the same table on the same connection shares the count.
    new VersionedTable(a, "vms").write(() => undefined);
    const v1 = vms.version();
    expect(v1).not.toBe(v0);
    // Another connection's counts are its own: a reads b's commits through data_version.
    new VersionedTable(b, "vms").write(() => undefined);
    expect(vms.version()).toBe(v1);
    b.exec("CREATE TABLE t (x)");
    expect(vms.version()).not.toBe(v1);
    a.close();
    b.close();
  });

  it("moves after a write that failed, and passes the write's answer or error through", () => {
    const vms = new VersionedTable(openDb(":memory:"), "vms");
    const v0 = vms.version();
    expect(vms.write(() => 42)).toBe(42);
    const v1 = vms.version();
    expect(v1).not.toBe(v0);
    expect(() =>
      vms.write(() => {
        throw new Error("constraint");
      }),
    ).toThrow("constraint");
    expect(vms.version()).not.toBe(v1);
  });

  it("makes caches that never answer from before a write", () => {
    const db = openDb(":memory:");
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)");
    const t = new VersionedTable(db, "t");
    const cache = t.cache<string | undefined>(8);
    let reads = 0;
    const read = (k: string) => () => (reads++, (db.prepare("SELECT v FROM t WHERE k = ?").get(k) as { v: string } | undefined)?.v);
    expect(cache.get("a", read("a"))).toBeUndefined();
    expect(cache.get("a", read("a"))).toBeUndefined();
    expect(reads).toBe(1);
    t.write(() => db.prepare("INSERT INTO t VALUES ('a', 'one')").run());
    expect(cache.get("a", read("a"))).toBe("one");
    expect(reads).toBe(2);
  });
});
