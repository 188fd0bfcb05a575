import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecError } from "../lib/index.js";
import {
  ImageExistsError,
  convert,
  createDisk,
  createOverlay,
  imageInfo,
  resizeDisk,
  snapshotApply,
  snapshotCreate,
  snapshotDelete,
  snapshotList,
} from "./qemu-img.js";

const MiB = 1024 * 1024;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "batu-qemu-img-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("qemu-img wrapper (real qemu-img)", () => {
  it("creates a qcow2 disk and reads it back", async () => {
    const info = await createDisk(join(dir, "disk.qcow2"), 64 * MiB);
    expect(info).toMatchObject({ format: "qcow2", virtualSizeBytes: 64 * MiB, backingFile: null, backingFormat: null });
    expect(info.actualSizeBytes).toBeGreaterThan(0);
    const raw = await createDisk(join(dir, "disk.raw"), 8 * MiB, "raw");
    expect(raw).toMatchObject({ format: "raw", virtualSizeBytes: 8 * MiB });
  });

  it("makes a linked clone that points at the absolute base and copies nothing", async () => {
    const base = join(dir, "base.qcow2");
    await createDisk(base, 32 * MiB);
    // Fill the base with 4 MiB of data so a copy would be visible in the overlay's size.
    const filled = join(dir, "filled.raw");
    await writeFile(filled, Buffer.alloc(4 * MiB, 0xab));
    const filledQcow = join(dir, "filled.qcow2");
    await convert(filled, filledQcow, "qcow2", { sourceFormat: "raw" });
    const overlay = await createOverlay(filledQcow, join(dir, "sub", "..", "ov.qcow2"));
    expect(overlay.format).toBe("qcow2");
    expect(overlay.backingFile).toBe(filledQcow);
    expect(overlay.backingFormat).toBe("qcow2");
    expect(overlay.virtualSizeBytes).toBe(4 * MiB);
    expect(overlay.actualSizeBytes).toBeLessThan(1 * MiB);
  });

  it("makes an overlay larger than its base", async () => {
    const base = join(dir, "small-base.qcow2");
    await createDisk(base, 16 * MiB);
    const ov = await createOverlay(base, join(dir, "big-ov.qcow2"), { sizeBytes: 128 * MiB });
    expect(ov.virtualSizeBytes).toBe(128 * MiB);
    expect(ov.backingFile).toBe(base);
  });

  it("fails with an ExecError carrying stderr when the base is missing", async () => {
    const err = await createOverlay(join(dir, "nope.qcow2"), join(dir, "ov-missing.qcow2")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    const e = err as ExecError;
    expect(e.command).toBe("qemu-img");
    expect(e.exitCode).toBe(1);
    expect(e.stderr).toContain("No such file or directory");
    expect(e.stderr).toContain("nope.qcow2");
  });

  it("refuses to overwrite an existing image", async () => {
    const path = join(dir, "exists.qcow2");
    await createDisk(path, MiB);
    await expect(createDisk(path, MiB)).rejects.toBeInstanceOf(ImageExistsError);
    await expect(createOverlay(path, path)).rejects.toBeInstanceOf(ImageExistsError);
  });

  it("rejects nonsense sizes before running anything", async () => {
    await expect(createDisk(join(dir, "zero.qcow2"), 0)).rejects.toBeInstanceOf(RangeError);
    await expect(createDisk(join(dir, "frac.qcow2"), 1.5)).rejects.toBeInstanceOf(RangeError);
  });

  it("reads a plain file that is not an image as raw", async () => {
    const path = join(dir, "notes.txt");
    await writeFile(path, "hello, not a disk\n");
    const info = await imageInfo(path);
    expect(info.format).toBe("raw");
    expect(info.virtualSizeBytes).toBe(512); // qemu-img rounds raw sizes up to a sector
    expect(info.backingFile).toBeNull();
  });

  it("gives an ExecError for info of a missing file", async () => {
    await expect(imageInfo(join(dir, "missing"))).rejects.toBeInstanceOf(ExecError);
  });

  it("reads with -U (shared)", async () => {
    const path = join(dir, "shared.qcow2");
    await createDisk(path, 2 * MiB);
    expect((await imageInfo(path, { shared: true })).virtualSizeBytes).toBe(2 * MiB);
  });

  it.skipIf(!existsSync("/usr/bin/qemu-system-x86_64"))("reads an image a running QEMU holds only with shared", async () => {
    const base = join(dir, "locked-base.qcow2");
    await createDisk(base, 8 * MiB);
    const disk = join(dir, "locked.qcow2");
    await createOverlay(base, disk);
    const qemu = spawn(
      "qemu-system-x86_64",
      ["-accel", "tcg", "-m", "32", "-display", "none", "-nodefaults", "-S", "-drive", `file=${disk},format=qcow2,if=virtio`],
      { stdio: "ignore" },
    );
    try {
      let locked: unknown;
      for (let i = 0; i < 50 && !(locked instanceof ExecError); i++) {
        locked = await imageInfo(disk).catch((e: unknown) => e);
        if (!(locked instanceof ExecError)) await new Promise((r) => setTimeout(r, 100));
      }
      expect(locked).toBeInstanceOf(ExecError);
      expect((locked as ExecError).stderr).toContain("lock");
      expect((await imageInfo(disk, { shared: true })).backingFile).toBe(base);
      // Other VMs' overlays on the same base can still be made.
      expect((await createOverlay(base, join(dir, "locked-2.qcow2"))).backingFile).toBe(base);
    } finally {
      qemu.kill("SIGKILL");
    }
  });

  it("resizes to an absolute size and shrinks only when asked", async () => {
    const path = join(dir, "resize.qcow2");
    await createDisk(path, 64 * MiB);
    await resizeDisk(path, 256 * MiB);
    expect((await imageInfo(path)).virtualSizeBytes).toBe(256 * MiB);
    await expect(resizeDisk(path, 32 * MiB)).rejects.toBeInstanceOf(ExecError);
    await resizeDisk(path, 32 * MiB, { shrink: true, format: "qcow2" });
    expect((await imageInfo(path)).virtualSizeBytes).toBe(32 * MiB);
  });

  it("creates, lists, applies and deletes snapshots", async () => {
    const path = join(dir, "snap.qcow2");
    await createDisk(path, 16 * MiB);
    expect(await snapshotList(path)).toEqual([]);
    const before = Date.now();
    await snapshotCreate(path, "s1");
    await snapshotCreate(path, "before-upgrade.2");
    const list = await snapshotList(path);
    expect(list.map((s) => s.name)).toEqual(["s1", "before-upgrade.2"]);
    expect(list[0]?.vmStateSizeBytes).toBe(0);
    expect(list[0]?.createdAt.getTime()).toBeGreaterThan(before - 5_000);
    await snapshotApply(path, "s1");
    await expect(snapshotApply(path, "nope")).rejects.toBeInstanceOf(ExecError);
    await snapshotDelete(path, "s1");
    expect((await snapshotList(path)).map((s) => s.name)).toEqual(["before-upgrade.2"]);
  });

  it("rejects snapshot names that could be read as options", async () => {
    const path = join(dir, "snap-names.qcow2");
    await createDisk(path, MiB);
    await expect(snapshotCreate(path, "-d")).rejects.toBeInstanceOf(RangeError);
    await expect(snapshotCreate(path, "")).rejects.toBeInstanceOf(RangeError);
    await expect(snapshotCreate(path, "a b")).rejects.toBeInstanceOf(RangeError);
  });

  it("converts: flattens, or writes only the delta against a backing file", async () => {
    const base = join(dir, "cv-base.qcow2");
    await createDisk(base, 8 * MiB);
    const ov = join(dir, "cv-ov.qcow2");
    await createOverlay(base, ov);
    const flat = await convert(ov, join(dir, "cv-flat.raw"), "raw");
    expect(flat).toMatchObject({ format: "raw", virtualSizeBytes: 8 * MiB, backingFile: null });
    const delta = await convert(ov, join(dir, "cv-delta.qcow2"), "qcow2", { backingFile: base });
    expect(delta).toMatchObject({ format: "qcow2", backingFile: base, backingFormat: "qcow2" });
  });

  it("reports a convert's progress as qemu-img prints it, ending at 1", async () => {
    const src = join(dir, "pr-src.raw");
    await writeFile(src, Buffer.alloc(16 * MiB, 0xcd));
    const seen: number[] = [];
    await convert(src, join(dir, "pr-dst.qcow2"), "qcow2", { sourceFormat: "raw", onProgress: (f) => seen.push(f) });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toBe(1);
    expect(seen.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= seen[i - 1]!))).toBe(true);
  });
});
