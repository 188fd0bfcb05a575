import { prepared, type Db } from "../store/db.js";
import { VersionedTable } from "../store/versioned-table.js";
import type { PortKind, VmSpec } from "./spec.js";
import type { VmStatus } from "./state.js";

export interface VmRecord {
  /** The VM's id on this host: its folder, its QEMU name, the host API's `vm_id`. */
  id: string;
  /** The id its owner knows it by (`task_id`): its id, unless another owner's VM had that id already. */
  taskId: string;
  nickname: string;
  owner: string | null;
  imageName: string;
  spec: VmSpec;
  status: VmStatus;
  ready: boolean;
  pid: number | null;
  startedAt: string | null;
  createdAt: string;
  updatedAt: string;
  lastError: string | null;
  /**
   * The system disk's virtual size (what the guest sees), written when batu creates vda. Null until
   * the disk exists, and for VMs recorded before batu kept it (the service then reads it once).
   */
  systemDiskBytes: number | null;
  /** Set once its owner's rental of this node ended (rental/expiry.ts); null while rented. */
  rentalEnd: VmRentalEnd | null;
}

/** The end of a VM owner's rental as the agent acted on it. */
export interface VmRentalEnd {
  /** When the rental ended (ISO 8601 UTC). */
  endedAt: string;
  /** When the agent shut the VM down for it; null until it has. */
  stoppedAt: string | null;
}

/** What a renter's task list shows of each VM: read without parsing the spec. */
export interface VmSummary {
  id: string;
  taskId: string;
  createdAt: string;
  status: VmStatus;
  desc: string;
}

export interface VmPortRow {
  port: number;
  proto: "tcp" | "udp";
  vmId: string;
  kind: PortKind;
}

interface Row {
  id: string;
  task_id: string | null;
  nickname: string;
  owner: string | null;
  image_name: string;
  spec_json: string;
  status: VmStatus;
  ready: number;
  pid: number | null;
  started_at: string | null;
  created_at: string;
  updated_at: string;
  last_error: string | null;
  system_disk_bytes: number | null;
  rental_ended_at: string | null;
  rental_stopped_at: string | null;
}

const toRecord = (r: Row): VmRecord => ({
  id: r.id,
  taskId: r.task_id ?? r.id,
  nickname: r.nickname,
  owner: r.owner,
  imageName: r.image_name,
  spec: JSON.parse(r.spec_json) as VmSpec,
  status: r.status,
  ready: r.ready === 1,
  pid: r.pid,
  startedAt: r.started_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  lastError: r.last_error,
  systemDiskBytes: r.system_disk_bytes,
  rentalEnd: r.rental_ended_at === null ? null : { endedAt: r.rental_ended_at, stoppedAt: r.rental_stopped_at },
});

/** The VMs of this host, their reserved ports and their lifecycle log. */
export class VmRepo {
  /** Every write to vms goes through here, so that caches of it (`vms.cache()`) never answer from before it. */
  readonly vms: VersionedTable;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.vms = new VersionedTable(db, "vms");
  }

  insert(
    vm: { id: string; taskId?: string; nickname: string; owner: string | null; spec: VmSpec; status: VmStatus },
    ports: Omit<VmPortRow, "vmId">[],
  ): VmRecord {
    const at = this.now().toISOString();
    this.vms.write(() =>
      this.db.transaction(() => {
        // A deleted VM's log stays for the record, but never shows as the log of a new VM given its id.
        prepared(this.db, "DELETE FROM vm_log WHERE vm_id = ?").run(vm.id);
        prepared(
          this.db,
          `INSERT INTO vms (id, task_id, nickname, owner, image_name, spec_json, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(vm.id, vm.taskId ?? vm.id, vm.nickname, vm.owner, vm.spec.imageName, JSON.stringify(vm.spec), vm.status, at, at);
        const add = prepared(this.db, "INSERT INTO vm_ports (port, proto, vm_id, kind) VALUES (?, ?, ?, ?)");
        for (const p of ports) add.run(p.port, p.proto, vm.id, p.kind);
      })(),
    );
    return this.get(vm.id)!;
  }

  get(id: string): VmRecord | undefined {
    const row = prepared(this.db, "SELECT * FROM vms WHERE id = ?").get(id) as Row | undefined;
    return row && toRecord(row);
  }

  /** `owner`'s VM whose task id is `taskId` (index vms_by_task). */
  getByTask(owner: string | null, taskId: string): VmRecord | undefined {
    const row = prepared(this.db, "SELECT * FROM vms WHERE owner IS ? AND task_id = ?").get(owner, taskId) as Row | undefined;
    return row && toRecord(row);
  }

  exists(id: string): boolean {
    return prepared(this.db, "SELECT 1 FROM vms WHERE id = ?").get(id) !== undefined;
  }

  list(): VmRecord[] {
    return (prepared(this.db, "SELECT * FROM vms ORDER BY created_at, id").all() as Row[]).map(toRecord);
  }

  /** The VMs of one owner, oldest first (index vms_by_owner). */
  listByOwner(owner: string): VmRecord[] {
    return (prepared(this.db, "SELECT * FROM vms WHERE owner = ? ORDER BY created_at, id").all(owner) as Row[]).map(toRecord);
  }

  /**
   * The list view of one owner's VMs, oldest first. Only the columns shown, and `desc` extracted by
   * SQLite: parsing each spec in JS made a 1,000-task list three times as slow.
   */
  summariesByOwner(owner: string): VmSummary[] {
    return prepared(
      this.db,
      `SELECT id, task_id AS taskId, created_at AS createdAt, status, spec_json ->> '$.desc' AS "desc"
       FROM vms WHERE owner = ? ORDER BY created_at, id`,
    ).all(owner) as VmSummary[];
  }

  /** Whether VM `id` exists and belongs to `owner`. */
  ownedBy(id: string, owner: string): boolean {
    return prepared(this.db, "SELECT 1 FROM vms WHERE id = ? AND owner = ?").get(id, owner) !== undefined;
  }

  update(
    id: string,
    fields: Partial<Pick<VmRecord, "status" | "ready" | "pid" | "startedAt" | "lastError" | "spec">>,
  ): void {
    const cols: string[] = [];
    const vals: unknown[] = [];
    const set = (col: string, v: unknown) => {
      cols.push(`${col} = ?`);
      vals.push(v);
    };
    if (fields.status !== undefined) set("status", fields.status);
    if (fields.ready !== undefined) set("ready", fields.ready ? 1 : 0);
    if (fields.pid !== undefined) set("pid", fields.pid);
    if (fields.startedAt !== undefined) set("started_at", fields.startedAt);
    if (fields.lastError !== undefined) set("last_error", fields.lastError);
    if (fields.spec !== undefined) set("spec_json", JSON.stringify(fields.spec));
    set("updated_at", this.now().toISOString());
    this.vms.write(() => this.db.prepare(`UPDATE vms SET ${cols.join(", ")} WHERE id = ?`).run(...vals, id));
  }

  /** Records the image a VM's system disk is now an overlay of (a restore to a snapshot), in the column and the spec. */
  setImage(id: string, imageName: string): void {
    this.vms.write(() =>
      prepared(this.db, "UPDATE vms SET image_name = ?, spec_json = json_set(spec_json, '$.imageName', ?), updated_at = ? WHERE id = ?").run(
        imageName,
        imageName,
        this.now().toISOString(),
        id,
      ),
    );
  }

  /** Records the system disk's virtual size (null: no disk). A fact about the disk: `updated_at` stays. */
  setSystemDiskBytes(id: string, sizeBytes: number | null): void {
    this.vms.write(() => prepared(this.db, "UPDATE vms SET system_disk_bytes = ? WHERE id = ?").run(sizeBytes, id));
  }

  /** Records the end of the owner's rental as acted on (null: rented again). A fact: `updated_at` stays. */
  setRentalEnd(id: string, end: VmRentalEnd | null): void {
    this.vms.write(() =>
      prepared(this.db, "UPDATE vms SET rental_ended_at = ?, rental_stopped_at = ? WHERE id = ?").run(
        end?.endedAt ?? null,
        end?.stoppedAt ?? null,
        id,
      ),
    );
  }

  /** Removes the VM with its ports (cascade); its log stays for the record. */
  delete(id: string): void {
    this.vms.write(() => prepared(this.db, "DELETE FROM vms WHERE id = ?").run(id));
  }

  ports(vmId?: string): VmPortRow[] {
    const rows = (
      vmId === undefined
        ? prepared(this.db, "SELECT port, proto, vm_id, kind FROM vm_ports").all()
        : prepared(this.db, "SELECT port, proto, vm_id, kind FROM vm_ports WHERE vm_id = ?").all(vmId)
    ) as Array<{ port: number; proto: "tcp" | "udp"; vm_id: string; kind: PortKind }>;
    return rows.map((r) => ({ port: r.port, proto: r.proto, vmId: r.vm_id, kind: r.kind }));
  }

  /**
   * Sets the ports VM `vmId` holds; with `spec`, records it as the VM's spec in the same transaction
   * (a change of ports and the spec that names them: a crash never keeps one without the other).
   */
  replacePorts(vmId: string, ports: Omit<VmPortRow, "vmId">[], spec?: VmSpec): void {
    const write = this.db.transaction(() => {
      prepared(this.db, "DELETE FROM vm_ports WHERE vm_id = ?").run(vmId);
      const add = prepared(this.db, "INSERT INTO vm_ports (port, proto, vm_id, kind) VALUES (?, ?, ?, ?)");
      for (const p of ports) add.run(p.port, p.proto, vmId, p.kind);
      if (spec) prepared(this.db, "UPDATE vms SET spec_json = ?, updated_at = ? WHERE id = ?").run(JSON.stringify(spec), this.now().toISOString(), vmId);
    });
    if (spec) this.vms.write(() => write());
    else write();
  }

  /** One line of the VM's lifecycle log (what DBC's `tasks/logs` shows). */
  log(vmId: string, line: string): void {
    prepared(this.db, "INSERT INTO vm_log (vm_id, at, line) VALUES (?, ?, ?)").run(vmId, this.now().toISOString(), line);
  }

  logLines(vmId: string, opts: { from: "head" | "tail"; count: number }): string[] {
    const rows = (
      opts.from === "head"
        ? prepared(this.db, "SELECT at, line FROM vm_log WHERE vm_id = ? ORDER BY id LIMIT ?").all(vmId, opts.count)
        : prepared(
            this.db,
            "SELECT at, line FROM (SELECT id, at, line FROM vm_log WHERE vm_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
          ).all(vmId, opts.count)
    ) as Array<{ at: string; line: string }>;
    return rows.map((r) => `${r.at} ${r.line}`);
  }
}
