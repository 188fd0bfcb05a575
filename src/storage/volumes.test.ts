import { access, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecError, Reverter } from "../lib/index.js";
import { createDisk, createOverlay, imageInfo } from "./qemu-img.js";
import { VolumeError, createVmVolumes, listVmDirs, removeVmVolumes, resolveDataFile, vmDir } from "./volumes.js";

const MiB = 1024 * 1024;
let dataDir: string;
let base: string;

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

async function volumeError(p: Promise<unknown>): Promise<VolumeError> {
  const e = await p.catch((err: unknown) => err);
  expect(e).toBeInstanceOf(VolumeError);
  return e as VolumeError;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "batu-volumes-"));
  await mkdir(join(dataDir, "images"));
  await mkdir(join(dataDir, "data-files"));
  base = join(dataDir, "images", "debian.qcow2");
  await createDisk(base, 32 * MiB);
  await createDisk(join(dataDir, "data-files", "shared.qcow2"), 16 * MiB);
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe("vm volumes", () => {
  it("creates vda as an overlay and vdb of the requested size", async () => {
    const r = new Reverter();
    const disks = await createVmVolumes(
      { dataDir, vmId: "vm-1", baseImagePath: base, systemDiskSizeBytes: 64 * MiB, dataDiskSizeBytes: 10 * MiB },
      r,
    );
    const dir = join(dataDir, "vms", "vm-1");
    expect(disks).toEqual([
      { id: "vda", path: join(dir, "vda.qcow2"), format: "qcow2", external: false, virtualSizeBytes: 64 * MiB },
      { id: "vdb", path: join(dir, "vdb.qcow2"), format: "qcow2", external: false, virtualSizeBytes: 10 * MiB },
    ]);
    const vda = await imageInfo(join(dir, "vda.qcow2"));
    expect(vda).toMatchObject({ backingFile: base, backingFormat: "qcow2", virtualSizeBytes: 64 * MiB });
    expect((await imageInfo(join(dir, "vdb.qcow2"))).virtualSizeBytes).toBe(10 * MiB);
    r.success();
  });

  it("creates only vda when no data disk is asked for, sized like the base", async () => {
    const disks = await createVmVolumes({ dataDir, vmId: "vm_only_a", baseImagePath: base }, new Reverter());
    expect(disks.map((d) => d.id)).toEqual(["vda"]);
    expect((await imageInfo(disks[0]!.path)).virtualSizeBytes).toBe(32 * MiB);
  });

  it("uses an operator data file as vdb, ignoring the data disk size", async () => {
    const disks = await createVmVolumes(
      { dataDir, vmId: "vm-data", baseImagePath: base, dataFileName: "shared.qcow2", dataDiskSizeBytes: MiB },
      new Reverter(),
    );
    expect(disks[1]).toEqual({
      id: "vdb",
      path: join(dataDir, "data-files", "shared.qcow2"),
      format: "qcow2",
      external: true,
      virtualSizeBytes: 16 * MiB,
    });
    expect(await readdir(join(dataDir, "vms", "vm-data"))).toEqual(["vda.qcow2"]);
    await removeVmVolumes(dataDir, "vm-data");
    expect(await exists(join(dataDir, "data-files", "shared.qcow2"))).toBe(true);
  });

  it("refuses a data file with a backing file (a raw file a guest made look like qcow2)", async () => {
    await createOverlay(base, join(dataDir, "data-files", "sneaky.qcow2"));
    const r = new Reverter();
    const e = await volumeError(createVmVolumes({ dataDir, vmId: "vm-sneaky", baseImagePath: base, dataFileName: "sneaky.qcow2" }, r));
    expect(e.code).toBe("data_file_has_backing_file");
    expect(await r.revert()).toEqual([]); // nothing was registered: refused before any change
    expect(await exists(join(dataDir, "vms", "vm-sneaky"))).toBe(false);
  });

  it("rejects bad data file names before touching the host", async () => {
    for (const name of ["../images/debian.qcow2", "a/b.qcow2", "..", ".", "", "x..y", "a\\b"]) {
      const e = await volumeError(createVmVolumes({ dataDir, vmId: "vm-bad", baseImagePath: base, dataFileName: name }, new Reverter()));
      expect(e.code).toBe("invalid_data_file_name");
    }
    const e = await volumeError(resolveDataFile(dataDir, "missing.qcow2"));
    expect(e.code).toBe("data_file_not_found");
    expect(e.message).toBe(`data_file_name is not exist, path: ${join(dataDir, "data-files", "missing.qcow2")}`);
    await mkdir(join(dataDir, "data-files", "a-folder"));
    expect((await volumeError(resolveDataFile(dataDir, "a-folder"))).code).toBe("data_file_not_found");
    expect(await exists(join(dataDir, "vms", "vm-bad"))).toBe(false);
  });

  it("rejects vm ids that could escape the data dir", async () => {
    for (const vmId of ["../x", "a/b", "..", "", "a.b", "x".repeat(65), "a b"]) {
      const e = await volumeError(createVmVolumes({ dataDir, vmId, baseImagePath: base }, new Reverter()));
      expect(e.code).toBe("invalid_vm_id");
      expect(() => vmDir(dataDir, vmId)).toThrow(VolumeError);
      await expect(removeVmVolumes(dataDir, vmId)).rejects.toBeInstanceOf(VolumeError);
    }
  });

  it("refuses a system disk smaller than the image and an existing vm folder", async () => {
    const small = await volumeError(
      createVmVolumes({ dataDir, vmId: "vm-small", baseImagePath: base, systemDiskSizeBytes: MiB }, new Reverter()),
    );
    expect(small.code).toBe("system_disk_too_small");
    await createVmVolumes({ dataDir, vmId: "vm-twice", baseImagePath: base }, new Reverter());
    const twice = await volumeError(createVmVolumes({ dataDir, vmId: "vm-twice", baseImagePath: base }, new Reverter()));
    expect(twice.code).toBe("vm_dir_exists");
    expect(await exists(join(dataDir, "vms", "vm-twice", "vda.qcow2"))).toBe(true);
  });

  it("leaves nothing behind when a step fails and the reverter runs", async () => {
    const r = new Reverter();
    // A missing base fails the first qemu-img call, before any folder is made.
    await expect(
      createVmVolumes({ dataDir, vmId: "vm-nobase", baseImagePath: join(dataDir, "images", "nope.qcow2") }, r),
    ).rejects.toBeInstanceOf(ExecError);
    expect(await r.revert()).toEqual([]);
    expect(await exists(join(dataDir, "vms", "vm-nobase"))).toBe(false);

    // A later step (vdb) fails after vda exists: revert removes vda and the folder.
    const r2 = new Reverter();
    await expect(
      createVmVolumes({ dataDir, vmId: "vm-halfway", baseImagePath: base, dataDiskSizeBytes: 0.5 }, r2),
    ).rejects.toBeInstanceOf(RangeError);
    expect(await exists(join(dataDir, "vms", "vm-halfway", "vda.qcow2"))).toBe(true);
    expect(await r2.revert()).toEqual([]);
    expect(await exists(join(dataDir, "vms", "vm-halfway"))).toBe(false);
  });

  it("lists vm folders for reconcile and removes them", async () => {
    await writeFile(join(dataDir, "vms", "stray-file"), "");
    await mkdir(join(dataDir, "vms", "not.a.vm"));
    const list = await listVmDirs(dataDir);
    const ids = list.map((d) => d.vmId);
    expect(ids).toContain("vm-1");
    expect(ids).not.toContain("not.a.vm");
    expect(ids).not.toContain("stray-file");
    expect(list.find((d) => d.vmId === "vm-1")).toEqual({
      vmId: "vm-1",
      path: join(dataDir, "vms", "vm-1"),
      files: ["vda.qcow2", "vdb.qcow2"],
    });
    await removeVmVolumes(dataDir, "vm-1");
    await removeVmVolumes(dataDir, "vm-1"); // idempotent
    expect((await listVmDirs(dataDir)).map((d) => d.vmId)).not.toContain("vm-1");
    expect(await listVmDirs(join(dataDir, "empty-elsewhere"))).toEqual([]);
  });
});
