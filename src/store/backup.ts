/**
 * A host's state, backed up and restored: its SQLite store (members, rental ledger, sessions, used
 * nonces, VMs, image and LAN registries) copied with SQLite's online backup, consistent while the
 * agent runs and writes, and its conf/ files (node key, tokens, TLS key, config). A backup holds
 * secrets: its folder is 0700, its files 0600. VM disks are not in it (they are the VMs' data, not
 * the group's state; snapshots and images cover them).
 */
import Database from "better-sqlite3";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { MIGRATIONS } from "./migrations.js";

/** The store's file name, in a backup folder as in the data dir (agent/state.ts DB_FILE is this). */
export const BACKUP_DB = "batu.db";
/** The conf files' folder in a backup folder. */
export const BACKUP_CONF = "conf";

export interface BackupSummary {
  dbFile: string;
  confFiles: string[];
  schemaVersion: number;
}

const private0600 = (path: string) => chmodSync(path, 0o600);

/** The schema version a store file has (its newest migration), after SQLite's integrity check. Throws when the file is no sound store. */
export function checkStore(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const check = db.pragma("integrity_check", { simple: true });
    if (check !== "ok") throw new Error(`${path}: SQLite's integrity check fails: ${String(check)}`);
    const row = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
    return row.v ?? 0;
  } catch (e) {
    if (e instanceof Error && /no such table|not a database|file is not a database/.test(e.message)) throw new Error(`${path}: not a batu store (${e.message})`);
    throw e;
  } finally {
    db.close();
  }
}

/**
 * Copies the store at `dbPath` (the agent may be running) and the files of `confDir` into the new
 * folder `target`. Refuses a target that exists and is not empty: a backup never overwrites one.
 */
export async function backup(dbPath: string, confDir: string, target: string): Promise<BackupSummary> {
  if (existsSync(target) && readdirSync(target).length > 0) throw new Error(`${target}: exists and is not empty (a backup goes to a new folder)`);
  mkdirSync(join(target, BACKUP_CONF), { recursive: true, mode: 0o700 });
  chmodSync(target, 0o700);
  const source = new Database(dbPath, { readonly: true, fileMustExist: true });
  const dbFile = join(target, BACKUP_DB);
  try {
    // SQLite's online backup: a consistent copy page by page, while the agent goes on writing.
    await source.backup(dbFile);
  } finally {
    source.close();
  }
  private0600(dbFile);
  const confFiles = readdirSync(confDir).filter((f) => statSync(join(confDir, f)).isFile());
  for (const f of confFiles) {
    copyFileSync(join(confDir, f), join(target, BACKUP_CONF, f));
    private0600(join(target, BACKUP_CONF, f));
  }
  return { dbFile, confFiles, schemaVersion: checkStore(dbFile) };
}

/**
 * Puts a backup folder's store and conf files in place of `dbPath`'s and `confDir`'s: the agent
 * must not run (the caller checks). The backup is checked first; the store it replaces is kept
 * beside it (`batu.db.before-restore-<time>`). A backup newer than this batu (a schema it does not
 * know) is refused; an older one is brought up to date at the agent's next start.
 */
export function restore(source: string, dbPath: string, confDir: string, now: Date = new Date()): BackupSummary & { keptAs: string | null } {
  const dbFile = join(source, BACKUP_DB);
  if (!existsSync(dbFile)) throw new Error(`${source}: no ${BACKUP_DB} in it (not a batu backup)`);
  const schemaVersion = checkStore(dbFile);
  const known = Math.max(...MIGRATIONS.map((m) => m.version));
  if (schemaVersion > known) throw new Error(`${source}: made by a newer batu (schema ${schemaVersion}; this one knows up to ${known})`);
  let keptAs: string | null = null;
  if (existsSync(dbPath)) {
    keptAs = `${dbPath}.before-restore-${now.toISOString().replace(/[:.]/g, "-")}`;
    renameSync(dbPath, keptAs);
  }
  // A host that lost its data dir gets it back as the agent makes it: private.
  mkdirSync(dirname(dbPath), { recursive: true, mode: 0o700 });
  // The old store's write-ahead log belongs to it, never to the restored file.
  for (const suffix of ["-wal", "-shm"]) rmSync(`${dbPath}${suffix}`, { force: true });
  copyFileSync(dbFile, `${dbPath}.restoring`);
  private0600(`${dbPath}.restoring`);
  renameSync(`${dbPath}.restoring`, dbPath);
  const confSource = join(source, BACKUP_CONF);
  const confFiles = existsSync(confSource) ? readdirSync(confSource).filter((f) => statSync(join(confSource, f)).isFile()) : [];
  mkdirSync(confDir, { recursive: true, mode: 0o700 });
  for (const f of confFiles) {
    copyFileSync(join(confSource, f), join(confDir, f));
    private0600(join(confDir, f));
  }
  return { dbFile: dbPath, confFiles, schemaVersion, keptAs };
}
