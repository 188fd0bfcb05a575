import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { MIGRATIONS, type Migration } from "./migrations.js";
import { makePrivateFile } from "../lib/private-files.js";

export type Db = Database.Database;

const statements = new WeakMap<Db, Map<string, Database.Statement>>();

/**
 * `db.prepare(sql)` compiled once per database and reused: compiling a statement on every call
 * took a fifth of a small API request's CPU. Only for fixed SQL text (each text is kept), and never
 * for a statement that `.pluck()`, `.raw()` or `.expand()` would change for every other user.
 */
export function prepared(db: Db, sql: string): Database.Statement {
  let cache = statements.get(db);
  if (!cache) statements.set(db, (cache = new Map()));
  let statement = cache.get(sql);
  if (!statement) cache.set(sql, (statement = db.prepare(sql)));
  return statement;
}

const dataVersions = new WeakMap<Db, Database.Statement>();

/**
 * SQLite's `PRAGMA data_version` of this connection: it changes whenever another connection (another
 * process, a `sqlite3` shell, the CLI writing offline) committed to the file since the last call;
 * never for this connection's own writes, which `VersionedTable.write` counts.
 */
export function dataVersion(db: Db): number {
  const kept = keptDataVersions?.get(db);
  if (kept !== undefined) return kept;
  let statement = dataVersions.get(db);
  // Its own statement: pluck() would change a shared prepared() one for every other user.
  if (!statement) dataVersions.set(db, (statement = db.prepare("PRAGMA data_version").pluck()));
  const version = statement.get() as number;
  keptDataVersions?.set(db, version);
  return version;
}

// Inside oneDataVersionDuring: each connection's data_version, once asked.
let keptDataVersions: Map<Db, number> | null = null;

/**
 * Runs `read` (synchronous: the part of a request before its first await) asking each connection's
 * `PRAGMA data_version` at most once. A request's cached reads (its rental, its session, its
 * reply) each check the version; the PRAGMA starts a read transaction of its own (≈ 5 µs alone, more
 * under load: three of them were a quarter of the agent's CPU on a kept `tasks/<id>` reply,
 * `npm run bench:api -- --agent-cpu-prof DIR`), and one answer serves them all. Another process's commit that lands while `read` runs is seen by the
 * next call, as if it had landed just after: never later than the next request. This connection's
 * own writes still move VersionedTable's versions at once (they are counted, not read from SQLite).
 */
export function oneDataVersionDuring<T>(read: () => T): T {
  if (keptDataVersions) return read();
  keptDataVersions = new Map();
  try {
    return read();
  } finally {
    keptDataVersions = null;
  }
}

/** Opens (creating if needed) the agent's SQLite file and brings its schema up to date. */
export function openDb(path: string, migrations: readonly Migration[] = MIGRATIONS): Db {
  // The folder's mode is its owner's choice (the agent makes its data dir private); the file's is ours.
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // VM login passwords and renters' sessions live here; SQLite gives its -wal and -shm files the same mode.
  if (path !== ":memory:") makePrivateFile(path);
  db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db, migrations);
  return db;
}

/** Applies every migration newer than the recorded version, each in its own transaction. */
export function migrate(db: Db, migrations: readonly Migration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
  const current = row.v ?? 0;
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    })();
    applied.push(m.version);
  }
  return applied;
}
