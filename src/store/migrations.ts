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
  {
    version: 2,
    name: "vms, their ports and lifecycle log",
    sql: `
      CREATE TABLE vms (
        id          TEXT PRIMARY KEY,
        nickname    TEXT NOT NULL DEFAULT '',
        -- who may see and touch it: NULL for the operator's VMs (host API), a renter id otherwise
        owner       TEXT,
        image_name  TEXT NOT NULL,
        -- the VM's spec (cpu, memory, disks, ports, boot) as JSON; see src/vm/spec.ts
        spec_json   TEXT NOT NULL,
        -- DBC's status strings: creating, running, closed, starting, being shutdown, ...
        status      TEXT NOT NULL,
        ready       INTEGER NOT NULL DEFAULT 0,
        pid         INTEGER,
        started_at  TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        last_error  TEXT
      );
      CREATE TABLE vm_ports (
        port   INTEGER NOT NULL,
        proto  TEXT NOT NULL,
        vm_id  TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
        -- ssh | rdp | vnc | custom
        kind   TEXT NOT NULL,
        PRIMARY KEY (port, proto)
      );
      CREATE TABLE vm_log (
        id     INTEGER PRIMARY KEY,
        vm_id  TEXT NOT NULL,
        at     TEXT NOT NULL,
        line   TEXT NOT NULL
      );
      CREATE INDEX vm_log_by_vm ON vm_log (vm_id, id);
    `,
  },
  {
    version: 3,
    name: "renters: rental ledger, used nonces, session ids",
    sql: `
      CREATE TABLE rentals (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id     TEXT NOT NULL,
        -- the owner of the renter's tasks: its wallet's SS58 address (prefix 42), or its multisig account's
        renter_id   TEXT NOT NULL,
        -- wallet | multisig
        kind        TEXT NOT NULL,
        -- JSON array of SS58 addresses: the wallet, or the multisig set
        wallets_json TEXT NOT NULL,
        -- the multisig threshold; NULL for a wallet
        threshold   INTEGER,
        granted_at  TEXT NOT NULL,
        -- ISO 8601 UTC (toISOString), so text order is time order
        until       TEXT NOT NULL,
        revoked_at  TEXT
      );
      CREATE INDEX rentals_by_node ON rentals (node_id, until);
      -- a nonce is accepted once per signer, ever; the signer is its public key (64 hex), not an address
      CREATE TABLE used_nonces (
        signer   TEXT NOT NULL,
        nonce    TEXT NOT NULL,
        used_at  TEXT NOT NULL,
        PRIMARY KEY (signer, nonce)
      ) WITHOUT ROWID;
      -- one session id per renter, created once and kept (DBC never rotates it)
      CREATE TABLE renter_sessions (
        renter_id    TEXT PRIMARY KEY,
        session_id   TEXT NOT NULL UNIQUE,
        kind         TEXT NOT NULL,
        wallets_json TEXT NOT NULL,
        threshold    INTEGER,
        created_at   TEXT NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: "vms: the system disk's virtual size",
    // NULL for VMs recorded before: the VM service reads it from the disk once and stores it.
    sql: `ALTER TABLE vms ADD COLUMN system_disk_bytes INTEGER;`,
  },
  {
    version: 5,
    name: "vms: index by owner",
    // A renter's task list is `WHERE owner = ? ORDER BY created_at, id`: served from the index, in order.
    sql: `CREATE INDEX vms_by_owner ON vms (owner, created_at, id);`,
  },
  {
    version: 6,
    name: "vms: the rental end acted on; nonces by age",
    sql: `
      -- the end of the owner's rental of this node as the agent acted on it (NULL while rented) and
      -- when it shut the VM down for it: set by rental/expiry.ts, cleared when the renter rents again
      ALTER TABLE vms ADD COLUMN rental_ended_at TEXT;
      ALTER TABLE vms ADD COLUMN rental_stopped_at TEXT;
      -- a signer's oldest nonces are the ones dropped past the per-signer cap
      CREATE INDEX used_nonces_by_age ON used_nonces (signer, used_at);
    `,
  },
  {
    version: 7,
    name: "vms: the task id its owner knows it by",
    sql: `
      -- A renter's task ids name tasks among its own: another owner's task of the same id is never a
      -- hint (its VM then gets another id here). The operator's VMs and every VM before: the VM id.
      ALTER TABLE vms ADD COLUMN task_id TEXT;
      UPDATE vms SET task_id = id;
      CREATE UNIQUE INDEX vms_by_task ON vms (owner, task_id);
    `,
  },
  {
    version: 8,
    name: "group members: their TLS endpoint",
    // Where the master calls a member over TLS, and the certificate it pins (from the member's join
    // proof or its signed heartbeats); NULL until the member told.
    sql: `
      ALTER TABLE group_members ADD COLUMN tls_port INTEGER;
      ALTER TABLE group_members ADD COLUMN cert_sha256 TEXT;
    `,
  },
  {
    version: 9,
    name: "vm snapshots",
    sql: `
      -- A task's snapshots (DBC's snapshot/*): each a new image of the node's image cache, booted by
      -- its owner only. status: DBC's (creating, none); a row left creating is an agent's cut short.
      CREATE TABLE vm_snapshots (
        vm_id        TEXT NOT NULL,
        name         TEXT NOT NULL,
        description  TEXT NOT NULL,
        image_name   TEXT NOT NULL UNIQUE,
        -- the image it is a delta on (a snapshot of a task booted from a snapshot is a delta on that one)
        base_image   TEXT NOT NULL,
        owner        TEXT,
        status       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        PRIMARY KEY (vm_id, name)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 10,
    name: "vm snapshots: data disks",
    // The data disks a snapshot holds besides vda: JSON [{"name":"vdb","sizeBytes":…}], each a
    // standalone qcow2 in <data>/snapshots/<vm>/<snapshot>/.
    sql: `
      ALTER TABLE vm_snapshots ADD COLUMN data_disks TEXT NOT NULL DEFAULT '[]';
    `,
  },
  {
    version: 11,
    name: "vm addresses",
    sql: `
      -- Each VM's fixed address on its host's NAT network (bridged networking): given at its first
      -- boot there, kept until the VM is deleted, so a guest keeps its address across reboots.
      CREATE TABLE vm_addresses (
        vm_id  TEXT PRIMARY KEY,
        ip     TEXT NOT NULL UNIQUE
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 12,
    name: "lan networks",
    sql: `
      -- The group's private LAN networks (DBC's lan/*), kept by the master (or a lone agent): names
      -- are unique in the group, each has its own VXLAN id, and only its owner's tasks join it.
      CREATE TABLE lan_networks (
        name          TEXT PRIMARY KEY,
        owner         TEXT NOT NULL,
        vni           INTEGER NOT NULL UNIQUE,
        cidr          TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        -- the last time it had a member: a network unused for lan_unused_days is removed
        last_used_at  TEXT NOT NULL,
        -- the host serving its DHCP (one of the hosts with a member), null while it has none
        dhcp_node     TEXT
      ) WITHOUT ROWID;
      -- Each member's address, given by the master when the task is made: held until the host that
      -- runs the task stops reporting it (the task was deleted).
      CREATE TABLE lan_addresses (
        network       TEXT NOT NULL REFERENCES lan_networks(name),
        ip            TEXT NOT NULL,
        node_id       TEXT NOT NULL,
        task_id       TEXT,
        allocated_at  TEXT NOT NULL,
        PRIMARY KEY (network, ip)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 13,
    name: "vm gpus",
    sql: `
      -- The GPUs a running VM holds (each by its function 0's PCI address): a GPU is never in two
      -- VMs (the key), and rows of VMs whose QEMU no longer runs are dropped at every agent start.
      CREATE TABLE vm_gpus (
        pci_address  TEXT PRIMARY KEY,
        vm_id        TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX vm_gpus_by_vm ON vm_gpus (vm_id);
    `,
  },
  {
    version: 14,
    name: "rentals by gpu",
    sql: `
      -- What a grant gives: gpus NULL is the whole node (one renter at a time); a number, that many
      -- of its GPUs (several renters share the node). The others, NULL: no limit of their own.
      ALTER TABLE rentals ADD COLUMN gpus INTEGER;
      ALTER TABLE rentals ADD COLUMN cpu_cores INTEGER;
      ALTER TABLE rentals ADD COLUMN mem_gib INTEGER;
      ALTER TABLE rentals ADD COLUMN disk_gib INTEGER;
    `,
  },
  {
    version: 15,
    name: "vm usage",
    sql: `
      -- What each VM ran, for billing: one row per stretch its QEMU ran, with what it held meanwhile.
      -- Kept after the VM is deleted. ended_at NULL: running now.
      CREATE TABLE vm_usage (
        id          INTEGER PRIMARY KEY,
        vm_id       TEXT NOT NULL,
        task_id     TEXT NOT NULL,
        owner       TEXT,
        started_at  TEXT NOT NULL,
        ended_at    TEXT,
        vcpus       INTEGER NOT NULL,
        memory_mib  INTEGER NOT NULL,
        gpus        INTEGER NOT NULL
      );
      CREATE INDEX vm_usage_open ON vm_usage (vm_id) WHERE ended_at IS NULL;
      CREATE INDEX vm_usage_by_time ON vm_usage (started_at);
    `,
  },
  {
    version: 16,
    name: "rental io caps",
    sql: `
      -- Caps a grant puts on each of the renter's VMs: disk IOPS, disk MB/s, network Mbit/s each
      -- way. NULL: the operator's default (config.json vm_disk_iops, vm_disk_mbps, vm_net_mbit).
      ALTER TABLE rentals ADD COLUMN disk_iops INTEGER;
      ALTER TABLE rentals ADD COLUMN disk_mbps INTEGER;
      ALTER TABLE rentals ADD COLUMN net_mbit INTEGER;
    `,
  },
];
