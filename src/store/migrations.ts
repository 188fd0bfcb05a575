/**
 * Append-only, numbered schema migrations. Never edit a migration that has shipped: add a new one.
 * Each runs once, in a transaction, and is recorded in `schema_migrations`.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "group members",
    sql: `
      CREATE TABLE group_members (
        id            INTEGER PRIMARY KEY,
        address       TEXT NOT NULL UNIQUE,
        node_id       TEXT UNIQUE,
        nickname      TEXT NOT NULL DEFAULT '',
        -- liveness, driven by heartbeats: alive | suspect | dead
        state         TEXT NOT NULL DEFAULT 'alive',
        joined_at     TEXT NOT NULL,
        last_seen     TEXT NOT NULL,
        -- the member's last reported capacity (JSON) and VM count, from heartbeats
        capacity_json TEXT,
        vm_count      INTEGER
      );
    `,
  },
];
