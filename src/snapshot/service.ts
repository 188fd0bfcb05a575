/**
 * A task's snapshots, as DBC's `snapshot/*` makes them: the task's system disk `vda` as a qcow2 delta
 * against its base image (DBC: `qemu-img convert -B` of a shut-off VM), kept as a new image of the
 * node's image cache that only the task's owner may boot (`tasks/start` with `image_name`). batu
 * also snapshots a running VM without stopping it: a QMP backup job copies the disk's top layer as
 * of the job's start (crash-consistent) while the guest runs on.
 *
 * The image is written under a temporary name and renamed once complete (its sidecar first), so a
 * half-written image is never served; a snapshot left `creating` by an agent killed half-way is
 * removed at the next start (`recover`).
 */
import { existsSync, readFileSync } from "node:fs";
import { chmod, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Hypervisor } from "../hypervisor/driver.js";
import { killPoint } from "../lib/kill-points.js";
import { convert, createOverlayOf, imageInfo } from "../storage/qemu-img.js";
import { SYSTEM_DISK_FILE, vmDir } from "../storage/volumes.js";
import { prepared, type Db } from "../store/db.js";
import { FieldError } from "../vm/create-request.js";
import { VmConflictError } from "../vm/errors.js";
import type { ImageCatalog } from "../vm/images.js";
import type { VmRecord, VmRepo } from "../vm/repo.js";
import type { VmService } from "../vm/service.js";
import type { Operation } from "../vm/operations.js";

/** DBC's snapshot status strings (SnapshotInfo.h): `none` once made. */
export type SnapshotStatus = "none" | "creating" | "uploading";

export interface Snapshot {
  vmId: string;
  name: string;
  description: string;
  /** The image it is, in the node's image cache: what `tasks/start` takes as `image_name`. */
  imageName: string;
  owner: string | null;
  status: SnapshotStatus;
  createdAt: string;
}

/** A snapshot's name: it becomes part of an image file name. */
export const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface SnapshotServiceOptions {
  db: Db;
  vms: VmService;
  repo: VmRepo;
  images: ImageCatalog;
  hypervisor: Hypervisor;
  dataDir: string;
  /** How long a live copy may take. */
  backupTimeoutMs: number;
}

interface Row {
  vm_id: string;
  name: string;
  description: string;
  image_name: string;
  owner: string | null;
  status: SnapshotStatus;
  created_at: string;
}

const toSnapshot = (r: Row): Snapshot => ({
  vmId: r.vm_id,
  name: r.name,
  description: r.description,
  imageName: r.image_name,
  owner: r.owner,
  status: r.status,
  createdAt: r.created_at,
});

export class SnapshotService {
  constructor(private readonly opts: SnapshotServiceOptions) {}

  /** The image cache snapshots are written to (the catalog's first folder). */
  private get cache(): string {
    return this.opts.images.dirs[0]!;
  }

  list(vmId: string): Snapshot[] {
    return (prepared(this.opts.db, "SELECT * FROM vm_snapshots WHERE vm_id = ? ORDER BY created_at, name").all(vmId) as Row[]).map(toSnapshot);
  }

  get(vmId: string, name: string): Snapshot | undefined {
    const row = prepared(this.opts.db, "SELECT * FROM vm_snapshots WHERE vm_id = ? AND name = ?").get(vmId, name) as Row | undefined;
    return row && toSnapshot(row);
  }

  /**
   * Starts a snapshot of VM `id` and answers at once with its operation (refusals of the request
   * itself come now); the snapshot lists as `creating` until its image is complete.
   */
  begin(id: string, name: string, description: string): Operation {
    this.checkRequest(id, name, description);
    return this.opts.vms.beginOperation(id, "snapshot", () => this.create(id, name, description));
  }

  private checkRequest(id: string, name: string, description: string): void {
    if (!SNAPSHOT_NAME.test(name)) throw new FieldError("snapshot_name", "snapshot_name is invalid (letters, digits, . _ -; 64 at most)");
    if (description.length > 1024) throw new FieldError("desc", "desc is too long (1024 at most)");
    if (this.get(id, name)) throw new FieldError("snapshot_name", `snapshot_name already exist: ${name}`);
  }

  /**
   * Snapshots VM `id`'s system disk: live (a backup job) when it runs, by `qemu-img convert -B` when
   * it is shut off. Resolves with the snapshot once its image is complete and bootable.
   */
  async create(id: string, name: string, description: string): Promise<Snapshot> {
    this.checkRequest(id, name, description);
    return this.opts.vms.operate(id, "snapshot creating", async (vm, live) => {
      if (this.get(id, name)) throw new FieldError("snapshot_name", `snapshot_name already exist: ${name}`);
      const base = this.opts.images.resolve(vm.imageName);
      const imageName = `snap-${vm.id}-${name}.qcow2`;
      const final = join(this.cache, imageName);
      const tmp = join(this.cache, `.${imageName}.tmp`);
      const createdAt = new Date().toISOString();
      prepared(
        this.opts.db,
        "INSERT INTO vm_snapshots (vm_id, name, description, image_name, base_image, owner, status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'creating', ?)",
      ).run(id, name, description, imageName, base.name, vm.owner, createdAt);
      try {
        await rm(tmp, { force: true });
        const vda = join(vmDir(this.opts.dataDir, id), SYSTEM_DISK_FILE);
        if (live) {
          const size = vm.systemDiskBytes ?? (await imageInfo(vda, { shared: true })).virtualSizeBytes;
          await createOverlayOf(base, tmp, size);
          await this.opts.hypervisor.backupDisk(live.qmp, "vda", tmp, { timeoutMs: this.opts.backupTimeoutMs });
        } else {
          await convert(vda, tmp, "qcow2", { sourceFormat: "qcow2", backingFile: base.path, backingFormat: base.format });
        }
        // The renter's data: the owner's alone, like its disks.
        await chmod(tmp, 0o600);
        killPoint("snapshot.create.after-copy");
        await writeFile(join(this.cache, imageName.replace(/\.qcow2$/, ".json")), JSON.stringify(this.sidecarFor(vm, base.name, imageName)), { mode: 0o600 });
        // The image's presence marks it complete: a reader never sees it before its sidecar.
        await rename(tmp, final);
      } catch (e) {
        await this.discard(id, name, imageName);
        throw e;
      }
      prepared(this.opts.db, "UPDATE vm_snapshots SET status = 'none' WHERE vm_id = ? AND name = ?").run(id, name);
      this.opts.repo.log(id, `snapshot ${name} created${live ? " (live)" : ""}: image ${imageName}`);
      return this.get(id, name)!;
    });
  }

  /**
   * Puts a shut-off VM's system disk back to one of its snapshots (a batu extension): `vda` becomes
   * a fresh overlay of the snapshot's image, and the VM boots from it from then on (so the snapshot
   * stays while the VM does). What the VM wrote since is gone; its data disks are untouched.
   */
  async restore(id: string, name: string): Promise<void> {
    const snapshot = this.get(id, name);
    if (!snapshot || snapshot.status !== "none") throw new FieldError("snapshot_name", "snapshot_name not exist");
    await this.opts.vms.operate(id, "snapshot restoring", async (vm, live) => {
      if (live) throw new VmConflictError("the task runs: shut it down first, then restore it");
      const vda = join(vmDir(this.opts.dataDir, id), SYSTEM_DISK_FILE);
      const tmp = `${vda}.restore`;
      const size = vm.systemDiskBytes ?? (await imageInfo(vda, { shared: true })).virtualSizeBytes;
      await rm(tmp, { force: true });
      await createOverlayOf({ path: join(this.cache, snapshot.imageName), format: "qcow2" }, tmp, size);
      await chmod(tmp, 0o600);
      // The disk first, then the record: reconcile reads a crash in between from the disk's backing file.
      await rename(tmp, vda);
      killPoint("snapshot.restore.after-disk");
      this.opts.repo.setImage(id, snapshot.imageName);
      this.opts.repo.log(id, `restored to snapshot ${name}: the system disk is its image ${snapshot.imageName} again`);
    });
  }

  /** Deletes a snapshot and its image; refused while a task boots from it. */
  async delete(id: string, name: string): Promise<void> {
    const snapshot = this.get(id, name);
    if (!snapshot) throw new FieldError("snapshot_name", "snapshot_name not exist");
    if (snapshot.status === "creating") throw new VmConflictError(`snapshot ${name} is being created`);
    const use = this.useOf(snapshot.imageName, this.opts.repo.list());
    if (use) throw new VmConflictError(`snapshot ${name} is ${use}: delete that first`);
    await this.discard(id, name, snapshot.imageName);
    this.opts.repo.log(id, `snapshot ${name} deleted`);
  }

  /**
   * A deleted task's snapshots go with it (as in DBC), except one a VM boots from or another snapshot
   * is a delta on: that one stays (its image in use), and the operator deletes it later by VM id.
   * Returns the names deleted.
   */
  async dropTask(vmId: string): Promise<string[]> {
    const dropped: string[] = [];
    const vms = this.opts.repo.list();
    for (const s of this.list(vmId)) {
      if (s.status === "creating" || this.useOf(s.imageName, vms)) continue;
      await this.discard(vmId, s.name, s.imageName);
      dropped.push(s.name);
    }
    return dropped;
  }

  /** What keeps a snapshot's image: a VM booting from it, or a snapshot that is a delta on it; undefined when nothing does. */
  private useOf(imageName: string, vms: readonly VmRecord[]): string | undefined {
    const vm = vms.find((v) => v.imageName === imageName);
    if (vm) return `the image of task ${vm.taskId}`;
    const child = prepared(this.opts.db, "SELECT name FROM vm_snapshots WHERE base_image = ?").get(imageName) as { name: string } | undefined;
    return child && `the base of snapshot ${child.name}`;
  }

  /** At agent start: snapshots an agent killed half-way left `creating` are removed, with their files. */
  async recover(): Promise<string[]> {
    const cut = (prepared(this.opts.db, "SELECT * FROM vm_snapshots WHERE status = 'creating'").all() as Row[]).map(toSnapshot);
    for (const s of cut) await this.discard(s.vmId, s.name, s.imageName);
    return cut.map((s) => `${s.vmId}/${s.name}`);
  }

  private async discard(vmId: string, name: string, imageName: string): Promise<void> {
    await rm(join(this.cache, imageName), { force: true });
    await rm(join(this.cache, `.${imageName}.tmp`), { force: true });
    await rm(join(this.cache, imageName.replace(/\.qcow2$/, ".json")), { force: true });
    prepared(this.opts.db, "DELETE FROM vm_snapshots WHERE vm_id = ? AND name = ?").run(vmId, name);
  }

  /** The snapshot image's sidecar: its base's (how it boots), marked as the owner's own. */
  private sidecarFor(vm: VmRecord, baseName: string, imageName: string): Record<string, unknown> {
    const baseSidecar = join(this.cache, baseName.replace(/\.qcow2$/, ".json"));
    const meta: Record<string, unknown> = existsSync(baseSidecar)
      ? (JSON.parse(readFileSync(baseSidecar, "utf8")) as Record<string, unknown>)
      : { format: "qcow2", boot: "disk" };
    return { ...meta, name: imageName, format: "qcow2", ...(vm.owner !== null ? { owner: vm.owner } : {}) };
  }
}
