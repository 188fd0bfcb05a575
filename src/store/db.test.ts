import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MIGRATIONS } from "./migrations.js";
import { dataVersion, migrate, oneDataVersionDuring, openDb, prepared } from "./db.js";
import { VersionedTable } from "./versioned-table.js";

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

  it("is asked once per connection inside oneDataVersionDuring; another's commit is seen right after", () => {
    const path = join(mkdtempSync(join(tmpdir(), "batu-db-")), "batu.db");
    const a = openDb(path);
    const b = openDb(path);
    a.exec("CREATE TABLE t (x)");
    const v0 = dataVersion(a);
    const inside = oneDataVersionDuring(() => {
      const first = dataVersion(a);
      b.exec("INSERT INTO t VALUES (1)");
      // Nested: the same one look.
      const nested = oneDataVersionDuring(() => dataVersion(a));
      return { first, again: dataVersion(a), nested, other: dataVersion(b) };
    });
    expect(inside).toEqual({ first: v0, again: v0, nested: v0, other: dataVersion(b) });
    expect(dataVersion(a)).not.toBe(v0);
    // A throw ends the scope too.
    const v1 = dataVersion(a);
    expect(() =>
      oneDataVersionDuring(() => {
        dataVersion(a);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    b.exec("INSERT INTO t VALUES (2)");
    expect(dataVersion(a)).not.toBe(v1);
    a.close();
    b.close();
  });

  it("leaves this connection's own writes seen at once by VersionedTable's caches inside oneDataVersionDuring", () => {
    const db = openDb(":memory:");
    db.exec("CREATE TABLE t (x)");
    const table = new VersionedTable(db, "t");
    const memo = table.cache<number>(4);
    const count = () => memo.get("n", () => (db.prepare("SELECT COUNT(*) AS n FROM t").get() as { n: number }).n);
    const seen = oneDataVersionDuring(() => {
      const before = count();
      table.write(() => db.exec("INSERT INTO t VALUES (1)"));
      return [before, count()];
    });
    expect(seen).toEqual([0, 1]);
    db.close();
  });
});
