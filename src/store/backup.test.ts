import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { backup, checkStore, restore } from "./backup.js";
import { openDb, prepared } from "./db.js";
import { MIGRATIONS } from "./migrations.js";

const fresh = () => mkdtempSync(join(tmpdir(), "batu-backup-"));
const renters = (path: string) => (prepared(openDb(path), "SELECT renter_id FROM rentals ORDER BY id").all() as { renter_id: string }[]).map((r) => r.renter_id);
const grant = (db: ReturnType<typeof openDb>, renter: string) =>
  prepared(db, "INSERT INTO rentals (node_id, renter_id, kind, wallets_json, granted_at, until) VALUES (?, ?, 'wallet', '[]', '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z')").run("a".repeat(64), renter);

describe("backup and restore", () => {
  it("copies a store in use (its WAL included) and the conf files; restores them, keeping the replaced store", async () => {
    const dir = fresh();
    const conf = join(dir, "conf");
    mkdirSync(conf);
    writeFileSync(join(conf, "admin.token"), "secret-token", { mode: 0o600 });
    const dbPath = join(dir, "data", "batu.db");
    const live = openDb(dbPath);
    grant(live, "alice");
    grant(live, "bob"); // still in the write-ahead log: the agent's connection is open

    const target = join(dir, "backup");
    const summary = await backup(dbPath, conf, target);
    expect(summary.confFiles).toEqual(["admin.token"]);
    expect(summary.schemaVersion).toBe(Math.max(...MIGRATIONS.map((m) => m.version)));
    expect(statSync(target).mode & 0o777).toBe(0o700);
    expect(statSync(join(target, "batu.db")).mode & 0o777).toBe(0o600);
    expect(renters(join(target, "batu.db"))).toEqual(["alice", "bob"]);
    await expect(backup(dbPath, conf, target)).rejects.toThrow(/not empty/);

    // After the backup: a third rental, then a lost conf dir. The restore brings back what was backed up.
    grant(live, "carol");
    live.close();
    const conf2 = join(dir, "conf2");
    const done = restore(target, dbPath, conf2, new Date("2026-03-01T00:00:00Z"));
    expect(renters(dbPath)).toEqual(["alice", "bob"]);
    expect(readFileSync(join(conf2, "admin.token"), "utf8")).toBe("secret-token");
    expect(statSync(join(conf2, "admin.token")).mode & 0o777).toBe(0o600);
    expect(done.keptAs).toMatch(/batu\.db\.before-restore-2026-03-01T00-00-00-000Z$/);
    expect(renters(done.keptAs!)).toEqual(["alice", "bob", "carol"]);
  });

  it("refuses what is no sound batu store, and a store from a newer batu, leaving the current one in place", async () => {
    const dir = fresh();
    const dbPath = join(dir, "batu.db");
    openDb(dbPath).close();
    const notStore = join(dir, "junk");
    mkdirSync(notStore);
    writeFileSync(join(notStore, "batu.db"), "not a database at all".repeat(100));
    expect(() => restore(notStore, dbPath, join(dir, "conf"))).toThrow(/not a batu store|not a database/);
    expect(() => restore(join(dir, "nothing"), dbPath, join(dir, "conf"))).toThrow(/not a batu backup/);

    const newer = join(dir, "newer");
    mkdirSync(newer);
    const future = openDb(join(newer, "batu.db"), [...MIGRATIONS, { version: 999, name: "future", sql: "CREATE TABLE future (x INTEGER)" }]);
    future.close();
    expect(checkStore(join(newer, "batu.db"))).toBe(999);
    expect(() => restore(newer, dbPath, join(dir, "conf"))).toThrow(/newer batu \(schema 999/);
    expect(existsSync(dbPath)).toBe(true);
    expect(existsSync(join(dir, "conf"))).toBe(false);
  });
});
