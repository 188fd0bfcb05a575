/**
 * A task's snapshots, as DBC's `snapshot/*` makes them: the task's system disk `vda` as a qcow2 delta
 * against its base image (DBC: `qemu-img convert -B` of a shut-off VM), kept as a new image of the
 * node's image cache that only the task's owner may boot (`tasks/start` with `image_name`). batu
 * also snapshots a running VM without stopping it: QMP backup jobs copy the disks as of one instant
 * while the guest runs on, with the guest's filesystems frozen for that instant when its guest agent
 * answers (consistent), crash-consistent otherwise. On request a snapshot also holds data disks
 * (`vdb`…), each a standalone qcow2 under `<data>/snapshots/<vm>/<snapshot>/`, and a restore brings
 * them back.
 *
 * The image is written under a temporary name and renamed once complete (its sidecar first), so a
 * half-written image is never served; a snapshot left `creating` by an agent killed half-way is
 * removed at the next start (`recover`).
 */
import { existsSync, readFileSync } from "node:fs";
import { chmod, copyFile, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DiskBackup, Hypervisor } from "../hypervisor/driver.js";
import { syncFile, syncParentDir } from "../lib/durable.js";
import { killPoint } from "../lib/kill-points.js";
import { convert, createDisk, createOverlayOf, imageInfo } from "../storage/qemu-img.js";
import { SYSTEM_DISK_FILE, vmDir } from "../storage/volumes.js";
import { prepared, type Db } from "../store/db.js";
import { FieldError } from "../vm/create-request.js";
import { preparedDiskPath, swapDisks } from "../vm/disk-swap.js";
import { VmConflictError, VmResourceError } from "../vm/errors.js";
import type { ImageCatalog } from "../vm/images.js";
import type { VmRecord, VmRepo } from "../vm/repo.js";
import { checkDiskRoom, type HostCapacity } from "../vm/resources.js";
import type { VmService } from "../vm/service.js";
import type { Operation, ProgressReporter } from "../vm/operations.js";
import { dataDisksOf } from "../vm/spec.js";

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
  /** The data disks it holds besides vda, with their sizes then. */
  dataDisks: SnapshotDisk[];
}

export interface SnapshotDisk {
  name: string;
  sizeBytes: number;
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
  /** The host's room: a restore that brings back a deleted data disk must fit. */
  capacity: () => Promise<HostCapacity>;
  /** Sends a snapshot's image to image server `serverId` (the image center); resolves once it is there. */
  upload?: (serverId: string, imageName: string, owner: string | null) => Promise<void>;
}

interface Row {
  vm_id: string;
  name: string;
  description: string;
  image_name: string;
  owner: string | null;
  status: SnapshotStatus;
  created_at: string;
  data_disks: string;
}

const toSnapshot = (r: Row): Snapshot => ({
  vmId: r.vm_id,
  name: r.name,
  description: r.description,
  imageName: r.image_name,
  owner: r.owner,
  status: r.status,
  createdAt: r.created_at,
  dataDisks: JSON.parse(r.data_disks) as SnapshotDisk[],
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
   * Starts a snapshot of VM `id` (its system disk, and the data disks named in `dataDisks`) and answers
   * at once with its operation (refusals of the request itself come now); the snapshot lists as
   * `creating` until its image is complete, and the operation tells its progress.
   */
  begin(id: string, name: string, description: string, dataDisks: readonly string[] = [], uploadTo?: string): Operation {
    this.checkRequest(id, name, description, dataDisks);
    return this.opts.vms.beginOperation(id, "snapshot", async (progress) => {
      const snapshot = await this.create(id, name, description, dataDisks, progress);
      if (uploadTo !== undefined) await this.uploadTo(snapshot, uploadTo);
    });
  }

  /**
   * Sends a made snapshot's image to an image server (DBC's `image_server`), listing as `uploading`
   * meanwhile. A failed upload leaves the snapshot on the node, and says so in the task log.
   */
  private async uploadTo(snapshot: Snapshot, serverId: string): Promise<void> {
    if (!this.opts.upload) throw new Error("this node uploads no snapshots: it has no image center");
    const status = (s: SnapshotStatus) => prepared(this.opts.db, "UPDATE vm_snapshots SET status = ? WHERE vm_id = ? AND name = ?").run(s, snapshot.vmId, snapshot.name);
    status("uploading");
    try {
      await this.opts.upload(serverId, snapshot.imageName, snapshot.owner);
      this.opts.repo.log(snapshot.vmId, `snapshot ${snapshot.name} uploaded to image server ${serverId}`);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      this.opts.repo.log(snapshot.vmId, `snapshot ${snapshot.name} not uploaded to image server ${serverId}: ${why}; it is kept on the node`);
      throw new Error(`snapshot ${snapshot.name} made, but not uploaded to image server ${serverId}: ${why}`);
    } finally {
      status("none");
    }
  }

  private checkRequest(id: string, name: string, description: string, dataDisks: readonly string[]): void {
    if (!SNAPSHOT_NAME.test(name)) throw new FieldError("snapshot_name", "snapshot_name is invalid (letters, digits, . _ -; 64 at most)");
    if (description.length > 1024) throw new FieldError("desc", "desc is too long (1024 at most)");
    if (this.get(id, name)) throw new FieldError("snapshot_name", `snapshot_name already exist: ${name}`);
    this.dataDisksOf(this.opts.repo.get(id), dataDisks);
  }

  /** The VM's own data disks named in `names`, in guest order; refuses a name it has not, vda, and the operator's data file. */
  private dataDisksOf(vm: VmRecord | undefined, names: readonly string[]): SnapshotDisk[] {
    if (new Set(names).size !== names.length) throw new FieldError("disks", "disks names a disk twice");
    const own = vm ? dataDisksOf(vm.spec) : [];
    for (const n of names) {
      if (n === "vda") throw new FieldError("disks", "disks: vda is always in a snapshot; name data disks only");
      const disk = own.find((d) => d.name === n);
      if (!disk) throw new FieldError("disks", `task have no disk:${n}`);
      if (disk.external) throw new FieldError("disks", `disk ${n} is the operator's data file: it is not snapshotted`);
    }
    return own.filter((d) => names.includes(d.name)).map((d) => ({ name: d.name, sizeBytes: d.sizeBytes! }));
  }

  /** Where a snapshot keeps its data disks. */
  private disksDir(vmId: string, name: string): string {
    return join(this.opts.dataDir, "snapshots", vmId, name);
  }

  /**
   * Snapshots VM `id`'s system disk and the data disks named in `dataDisks`: live (backup jobs, the
   * guest frozen meanwhile when its agent answers) when it runs, by `qemu-img convert` when it is
   * shut off. Resolves with the snapshot once its image is complete and bootable.
   */
  async create(id: string, name: string, description: string, dataDisks: readonly string[] = [], progress?: ProgressReporter): Promise<Snapshot> {
    this.checkRequest(id, name, description, dataDisks);
    return this.opts.vms.operate(id, "snapshot creating", async (vm, live) => {
      if (this.get(id, name)) throw new FieldError("snapshot_name", `snapshot_name already exist: ${name}`);
      const disks = this.dataDisksOf(vm, dataDisks);
      const base = this.opts.images.resolve(vm.imageName);
      const imageName = `snap-${vm.id}-${name}.qcow2`;
      const final = join(this.cache, imageName);
      const tmp = join(this.cache, `.${imageName}.tmp`);
      const disksDir = this.disksDir(id, name);
      const createdAt = new Date().toISOString();
      prepared(
        this.opts.db,
        "INSERT INTO vm_snapshots (vm_id, name, description, image_name, base_image, owner, status, created_at, data_disks) VALUES (?, ?, ?, ?, ?, ?, 'creating', ?, ?)",
      ).run(id, name, description, imageName, base.name, vm.owner, createdAt, JSON.stringify(disks));
      let frozen = false;
      try {
        await rm(tmp, { force: true });
        await rm(disksDir, { recursive: true, force: true });
        if (disks.length > 0) await mkdir(disksDir, { recursive: true, mode: 0o700 });
        const dir = vmDir(this.opts.dataDir, id);
        const vda = join(dir, SYSTEM_DISK_FILE);
        if (live) {
          const size = vm.systemDiskBytes ?? (await imageInfo(vda, { shared: true })).virtualSizeBytes;
          await createOverlayOf(base, tmp, size);
          const targets: DiskBackup[] = [{ id: "vda", targetPath: tmp, sync: "top" }];
          for (const d of disks) {
            const target = join(disksDir, `${d.name}.qcow2`);
            await createDisk(target, d.sizeBytes, "qcow2");
            targets.push({ id: d.name, targetPath: target, sync: "full" });
          }
          // Frozen for the instant the copies start from (copy-before-write keeps that instant), no longer.
          frozen = await this.opts.hypervisor.freezeGuest(live.qmp, dir);
          const thaw = () => {
            if (!frozen) return;
            frozen = false;
            void this.opts.hypervisor.thawGuest(dir);
          };
          if (frozen) this.opts.repo.log(id, `snapshot ${name}: the guest agent froze the guest's filesystems`);
          await this.opts.hypervisor.backupDisks(live.qmp, targets, { timeoutMs: this.opts.backupTimeoutMs, afterStart: thaw, ...(progress ? { onProgress: progress } : {}) });
        } else {
          const sizes = [vm.systemDiskBytes ?? 1, ...disks.map((d) => d.sizeBytes)];
          const total = sizes.reduce((a, b) => a + b, 0);
          let done = 0;
          const part = (i: number) => (f: number) => progress?.((done + f * sizes[i]!) / total);
          await convert(vda, tmp, "qcow2", { sourceFormat: "qcow2", backingFile: base.path, backingFormat: base.format, onProgress: part(0) });
          for (const [i, d] of disks.entries()) {
            done += sizes[i]!;
            await convert(join(dir, `${d.name}.qcow2`), join(disksDir, `${d.name}.qcow2`), "qcow2", { sourceFormat: "qcow2", onProgress: part(i + 1) });
          }
        }
        // The renter's data: the owner's alone, like its disks; on disk before the image is marked complete.
        for (const file of [tmp, ...disks.map((d) => join(disksDir, `${d.name}.qcow2`))]) {
          await chmod(file, 0o600);
          await syncFile(file);
        }
        killPoint("snapshot.create.after-copy");
        await writeFile(join(this.cache, imageName.replace(/\.qcow2$/, ".json")), JSON.stringify(this.sidecarFor(vm, base.name, imageName)), { mode: 0o600 });
        // The image's presence marks it complete: a reader never sees it before its sidecar.
        await rename(tmp, final);
        await syncParentDir(final);
      } catch (e) {
        if (frozen) await this.opts.hypervisor.thawGuest(vmDir(this.opts.dataDir, id));
        await this.discard(id, name, imageName);
        throw e;
      }
      prepared(this.opts.db, "UPDATE vm_snapshots SET status = 'none' WHERE vm_id = ? AND name = ?").run(id, name);
      const held = disks.length > 0 ? ` with ${disks.map((d) => d.name).join(", ")}` : "";
      this.opts.repo.log(id, `snapshot ${name} created${live ? " (live)" : ""}${held}: image ${imageName}`);
      return this.get(id, name)!;
    });
  }

  /**
   * Puts a shut-off VM back to one of its snapshots (a batu extension): `vda` becomes a fresh overlay
   * of the snapshot's image, which the VM boots from then on (so the snapshot stays while the VM
   * does), and each data disk the snapshot holds is its copy again (brought back if deleted since).
   * What the VM wrote since on those disks is gone; its other data disks are untouched. All disks
   * change as one (vm/disk-swap.ts), even across an agent crash.
   */
  async restore(id: string, name: string): Promise<void> {
    const snapshot = this.get(id, name);
    if (!snapshot || snapshot.status !== "none") throw new FieldError("snapshot_name", "snapshot_name not exist");
    await this.opts.vms.operate(id, "snapshot restoring", async (vm, live) => {
      if (live) throw new VmConflictError("the task runs: shut it down first, then restore it");
      await this.checkRestoreRoom(vm, snapshot);
      const vda = join(vmDir(this.opts.dataDir, id), SYSTEM_DISK_FILE);
      const size = vm.systemDiskBytes ?? (await imageInfo(vda, { shared: true })).virtualSizeBytes;
      const prepare = [{ name: "vda" }, ...snapshot.dataDisks].map((d) => preparedDiskPath(this.opts.dataDir, id, d.name));
      try {
        for (const p of prepare) await rm(p, { force: true });
        await createOverlayOf({ path: join(this.cache, snapshot.imageName), format: "qcow2" }, prepare[0]!, size);
        for (const [i, d] of snapshot.dataDisks.entries()) await copyFile(join(this.disksDir(id, name), `${d.name}.qcow2`), prepare[i + 1]!);
        for (const p of prepare) await chmod(p, 0o600);
      } catch (e) {
        for (const p of prepare) await rm(p, { force: true });
        throw e;
      }
      await swapDisks(this.opts.dataDir, id, { imageName: snapshot.imageName, dataDisks: snapshot.dataDisks }, this.opts.repo);
      const disks = snapshot.dataDisks.length > 0 ? ` and its data disks ${snapshot.dataDisks.map((d) => d.name).join(", ")} are as they were then` : "";
      this.opts.repo.log(id, `restored to snapshot ${name}: the system disk is its image ${snapshot.imageName} again${disks}`);
    });
  }

  /** Refuses a restore whose data disks (brought back, or larger than now) would not fit the host. */
  private async checkRestoreRoom(vm: VmRecord, snapshot: Snapshot): Promise<void> {
    const now = new Map(dataDisksOf(vm.spec).map((d) => [d.name, d.sizeBytes ?? 0]));
    const more = snapshot.dataDisks.reduce((n, d) => n + Math.max(0, d.sizeBytes - (now.get(d.name) ?? 0)), 0);
    if (more === 0) return;
    const refusal = checkDiskRoom(await this.opts.capacity(), this.opts.repo.list(), vm.owner, more);
    if (refusal) throw new VmResourceError("snapshot_name", refusal.message);
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
    await rm(this.disksDir(vmId, name), { recursive: true, force: true });
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
