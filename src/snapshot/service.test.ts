import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { imageInfo } from "../storage/qemu-img.js";
import { ImageCatalog } from "../vm/images.js";
import { TEST_HOST, TEST_IMAGE, testCreateRequest, testVms, type TestVms } from "../vm/testing.js";
import { DiskService } from "../disk/service.js";
import type { Operation } from "../vm/operations.js";
import { SnapshotService } from "./service.js";
import { openDb } from "../store/db.js";

let vms: TestVms;
let snapshots: SnapshotService;
const cache = () => join(vms.dataDir, "images");

beforeEach(async () => {
  vms = await testVms({ shutdownTimeoutMs: 300 });
  snapshots = new SnapshotService({
    db: openDb(join(vms.dataDir, "batu.db")),
    vms: vms.service,
    repo: vms.repo,
    images: new ImageCatalog([cache(), join(vms.dataDir, "shipped")]),
    hypervisor: vms.hypervisor,
    dataDir: vms.dataDir,
    backupTimeoutMs: 1000,
    capacity: async () => TEST_HOST,
  });
});

const MiB = 2 ** 20;
/** Writes `pattern` over the first 64 KiB of a disk file (qemu-io, the real qcow2 driver). */
const fill = (file: string, pattern: number) => execFileSync("qemu-io", ["-f", "qcow2", "-c", `write -P ${pattern} 0 64k`, file], { stdio: "ignore" });
/** Whether the first 64 KiB of a disk file hold `pattern`. */
const holds = (file: string, pattern: number): boolean => {
  try {
    execFileSync("qemu-io", ["-f", "qcow2", "-c", `read -P ${pattern} 0 64k`, file], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
};
afterEach(async () => {
  await vms.close();
});

describe("SnapshotService", () => {
  it("snapshots a shut-off VM by qemu-img convert -B: a delta on the VM's base, owned by its renter, bootable by it alone", async () => {
    await vms.service.create(testCreateRequest("a1", { owner: "alice" }), { wait: true });
    await vms.service.act("a1", "poweroff");
    const s = await snapshots.create("a1", "s1", "before the upgrade");
    expect(s).toMatchObject({ vmId: "a1", name: "s1", description: "before the upgrade", imageName: "snap-a1-s1.qcow2", owner: "alice", status: "none" });
    const info = await imageInfo(join(cache(), s.imageName));
    expect(info.backingFile).toBe(join(cache(), TEST_IMAGE));
    expect(vms.hypervisor.backups).toEqual([]);
    // Its owner boots it; another renter is told it does not exist; the operator may.
    await vms.service.create(testCreateRequest("a2", { owner: "alice", imageName: s.imageName }), { wait: true });
    await expect(vms.service.create(testCreateRequest("b1", { owner: "bob", imageName: s.imageName }), { wait: true })).rejects.toMatchObject({
      field: "image_name",
      message: `'image_name' is not exist: ${s.imageName}`,
    });
    await vms.service.create(testCreateRequest("op", { owner: null, imageName: s.imageName }), { wait: true });
    expect(vms.repo.get("a1")!.status).toBe("closed");
  });

  it("snapshots a running VM live through the hypervisor's backup job, and the VM runs on", async () => {
    await vms.service.create(testCreateRequest("a1"), { wait: true });
    const s = await snapshots.create("a1", "live", "");
    expect(vms.hypervisor.backups).toEqual([{ id: "vda", targetPath: join(cache(), ".snap-a1-live.qcow2.tmp"), sync: "top", frozen: false }]);
    expect(existsSync(join(cache(), s.imageName))).toBe(true);
    expect(vms.repo.get("a1")!.status).toBe("running");
  });

  it("a failed copy leaves no image, no temporary file and no record", async () => {
    await vms.service.create(testCreateRequest("a1"), { wait: true });
    vms.hypervisor.backupDisks = async () => {
      throw new Error("backup job failed");
    };
    await expect(snapshots.create("a1", "s1", "")).rejects.toThrow("backup job failed");
    expect(snapshots.list("a1")).toEqual([]);
    expect(readdirSync(cache()).filter((f) => f.includes("snap-"))).toEqual([]);
    expect(vms.repo.get("a1")).toMatchObject({ status: "running", lastError: "backup job failed" });
  });

  it("removes at start what an agent killed mid-snapshot left: the record and its files", async () => {
    await vms.service.create(testCreateRequest("a1"), { wait: true });
    await snapshots.create("a1", "done", "");
    // As a crash leaves it: a row still creating and its temporary file.
    const db = openDb(join(vms.dataDir, "batu.db"));
    db.prepare(
      "INSERT INTO vm_snapshots (vm_id, name, description, image_name, base_image, owner, status, created_at) VALUES ('a1', 'cut', '', 'snap-a1-cut.qcow2', ?, 'alice', 'creating', ?)",
    ).run(TEST_IMAGE, new Date().toISOString());
    writeFileSync(join(cache(), ".snap-a1-cut.qcow2.tmp"), "half");
    expect(await snapshots.recover()).toEqual(["a1/cut"]);
    expect(snapshots.list("a1").map((s) => s.name)).toEqual(["done"]);
    expect(existsSync(join(cache(), ".snap-a1-cut.qcow2.tmp"))).toBe(false);
  });

  it("restores a shut-off VM to a snapshot: vda a fresh overlay of its image, which the VM boots from now", async () => {
    await vms.service.create(testCreateRequest("a1"), { wait: true });
    const s = await snapshots.create("a1", "s1", "");
    await expect(snapshots.restore("a1", "s1")).rejects.toThrow(/shut it down first/);
    await vms.service.act("a1", "poweroff");
    await snapshots.restore("a1", "s1");
    const vda = join(vms.dataDir, "vms", "a1", "vda.qcow2");
    expect((await imageInfo(vda)).backingFile).toBe(join(cache(), s.imageName));
    expect(vms.repo.get("a1")).toMatchObject({ imageName: s.imageName, status: "closed", spec: { imageName: s.imageName } });
    await expect(snapshots.delete("a1", "s1")).rejects.toThrow(/is the image of task a1/);
    await vms.service.act("a1", "start");
    expect(vms.hypervisor.started.at(-1)!.disks[0]!.path).toBe(vda);
    await expect(snapshots.restore("a1", "nope")).rejects.toMatchObject({ message: "snapshot_name not exist" });
  });

  it("a deleted task's snapshots go with it, except one a task boots from", async () => {
    await vms.service.create(testCreateRequest("a1"), { wait: true });
    const kept = await snapshots.create("a1", "kept", "");
    const gone = await snapshots.create("a1", "gone", "");
    await vms.service.create(testCreateRequest("a2", { imageName: kept.imageName }), { wait: true });
    await vms.service.act("a1", "delete");
    expect(await snapshots.dropTask("a1")).toEqual(["gone"]);
    expect(snapshots.list("a1").map((s) => s.name)).toEqual(["kept"]);
    expect(existsSync(join(cache(), gone.imageName))).toBe(false);
    expect(existsSync(join(cache(), kept.imageName))).toBe(true);
  });

  it("refuses bad names, a taken name, and deleting the image of a task", async () => {
    await vms.service.create(testCreateRequest("a1"), { wait: true });
    await expect(snapshots.create("a1", "../x", "")).rejects.toMatchObject({ field: "snapshot_name" });
    await expect(snapshots.create("a1", "a".repeat(65), "")).rejects.toMatchObject({ field: "snapshot_name" });
    const s = await snapshots.create("a1", "s1", "");
    await expect(snapshots.create("a1", "s1", "")).rejects.toMatchObject({ message: "snapshot_name already exist: s1" });
    await vms.service.create(testCreateRequest("a2", { imageName: s.imageName }), { wait: true });
    await expect(snapshots.delete("a1", "s1")).rejects.toThrow(/is the image of task a2/);
    // A snapshot of a2 (booted from s1) is a delta on s1: s1 stays while it does.
    await snapshots.create("a2", "child", "");
    await vms.service.act("a2", "delete");
    await expect(snapshots.delete("a1", "s1")).rejects.toThrow(/is the base of snapshot child/);
    await snapshots.delete("a2", "child");
    await snapshots.delete("a1", "s1");
    expect(existsSync(join(cache(), s.imageName))).toBe(false);
    await expect(snapshots.delete("a1", "s1")).rejects.toMatchObject({ message: "snapshot_name not exist" });
  });

  it("holds data disks on request: copied with vda as of one instant live, the guest frozen meanwhile when its agent answers", async () => {
    vms.hypervisor.guestsHaveAgent = true;
    await vms.service.create(testCreateRequest("a1", { dataDiskBytes: 64 * MiB }), { wait: true });
    const updates: Operation[] = [];
    const off = vms.queries.onOperation((op) => updates.push({ ...op }));
    const op = snapshots.begin("a1", "both", "", ["vdb"]);
    await vi.waitFor(() => expect(op.state).toBe("done"));
    off();
    const s = snapshots.get("a1", "both")!;
    expect(s.dataDisks).toEqual([{ name: "vdb", sizeBytes: 64 * MiB }]);
    expect(vms.hypervisor.backups.map((b) => [b.id, b.sync, b.frozen])).toEqual([
      ["vda", "top", true],
      ["vdb", "full", true],
    ]);
    expect(vms.hypervisor.frozen.size).toBe(0);
    expect(vms.repo.logLines("a1", { from: "tail", count: 50 }).some((l) => l.includes("the guest agent froze the guest's filesystems"))).toBe(true);
    // The operation told its progress to the end.
    expect(updates.map((u) => [u.progress, u.state])).toEqual([
      [0.5, "running"],
      [1, "running"],
      [1, "done"],
    ]);
    const vdb = join(vms.dataDir, "snapshots", "a1", "both", "vdb.qcow2");
    expect((await imageInfo(vdb)).virtualSizeBytes).toBe(64 * MiB);
  });

  it("restores data disks a snapshot holds: their content then, brought back when deleted since; others untouched", async () => {
    await vms.service.create(testCreateRequest("a1", { dataDiskBytes: 64 * MiB }), { wait: true });
    const disks = new DiskService({ dataDir: vms.dataDir, vms: vms.service, repo: vms.repo, hypervisor: vms.hypervisor, capacity: async () => TEST_HOST, detachTimeoutMs: 1000 });
    await vms.service.act("a1", "poweroff");
    const dir = join(vms.dataDir, "vms", "a1");
    fill(join(dir, "vdb.qcow2"), 0x5a);
    const progress: number[] = [];
    await snapshots.create("a1", "s1", "", ["vdb"], (f) => progress.push(f));
    expect(progress.at(-1)).toBe(1);
    // Since then: vdb overwritten, then deleted; vdc added.
    fill(join(dir, "vdb.qcow2"), 0x11);
    await disks.add("a1", 8 * MiB);
    fill(join(dir, "vdc.qcow2"), 0x33);
    await snapshots.restore("a1", "s1");
    expect(holds(join(dir, "vdb.qcow2"), 0x5a)).toBe(true);
    expect(holds(join(dir, "vdc.qcow2"), 0x33)).toBe(true);
    await disks.remove("a1", "vdb");
    expect(existsSync(join(dir, "vdb.qcow2"))).toBe(false);
    await snapshots.restore("a1", "s1");
    expect(holds(join(dir, "vdb.qcow2"), 0x5a)).toBe(true);
    expect((await disks.list(vms.repo.get("a1")!)).map((d) => [d.name, d.sizeBytes])).toEqual([
      ["vda", vms.repo.get("a1")!.systemDiskBytes],
      ["vdb", 64 * MiB],
      ["vdc", 8 * MiB],
    ]);
    expect(readdirSync(dir).filter((f) => f.includes("restore"))).toEqual([]);
    await vms.service.act("a1", "start");
    expect(vms.hypervisor.started.at(-1)!.disks.map((d) => d.id)).toEqual(["vda", "vdb", "vdc"]);
  });

  it("refuses data disks it cannot hold: vda, one the task has not, one named twice", async () => {
    await vms.service.create(testCreateRequest("a1", { dataDiskBytes: 64 * MiB }), { wait: true });
    expect(() => snapshots.begin("a1", "s", "", ["vda"])).toThrow(expect.objectContaining({ field: "disks", message: expect.stringMatching(/vda is always/) }));
    expect(() => snapshots.begin("a1", "s", "", ["vdc"])).toThrow(expect.objectContaining({ field: "disks", message: "task have no disk:vdc" }));
    expect(() => snapshots.begin("a1", "s", "", ["vdb", "vdb"])).toThrow(expect.objectContaining({ field: "disks" }));
    expect(snapshots.list("a1")).toEqual([]);
  });
});
