import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createLogger } from "../lib/logger.js";
import { openDb } from "../store/db.js";
import { createDisk } from "../storage/qemu-img.js";
import { VmRepo } from "./repo.js";
import { SystemDiskSizes } from "./system-disk.js";
import { testSpec } from "./testing.js";

const MiB = 2 ** 20;
let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "batu-disk-size-"));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

function setup() {
  const repo = new VmRepo(openDb(":memory:"));
  const sizes = new SystemDiskSizes(repo, (id) => join(dataDir, id), createLogger({ level: "silent" }));
  return { repo, sizes, set: vi.spyOn(repo, "setSystemDiskBytes") };
}

describe("SystemDiskSizes", () => {
  it("answers from the record without touching the disk", async () => {
    const { repo, sizes, set } = setup();
    repo.insert({ id: "new", nickname: "", owner: "alice", spec: testSpec("n"), status: "creating" }, []);
    repo.setSystemDiskBytes("new", 20 * 2 ** 30);
    set.mockClear();
    expect(await sizes.of({ ...repo.get("new")!, status: "running" })).toBe(20 * 2 ** 30);
    expect(set).not.toHaveBeenCalled();
  });

  it("reads a record made before batu kept the size once, then stores it", async () => {
    const { repo, sizes, set } = setup();
    repo.insert({ id: "legacy", nickname: "", owner: "alice", spec: testSpec("l"), status: "closed" }, []);
    await mkdir(join(dataDir, "legacy"));
    await createDisk(join(dataDir, "legacy", "vda.qcow2"), 48 * MiB);
    const legacy = repo.get("legacy")!;
    expect(legacy.systemDiskBytes).toBeNull();
    // Concurrent first reads share one qemu-img.
    expect(await Promise.all([sizes.of(legacy), sizes.of(legacy)])).toEqual([48 * MiB, 48 * MiB]);
    expect(set).toHaveBeenCalledTimes(1);
    expect(repo.get("legacy")!.systemDiskBytes).toBe(48 * MiB);
    // From now on the record answers, whatever the disk says.
    await rm(join(dataDir, "legacy"), { recursive: true });
    expect(await sizes.of(repo.get("legacy")!)).toBe(48 * MiB);
    expect(set).toHaveBeenCalledTimes(1);
  });

  it("is null, and stores nothing, for a VM being created or one without a disk", async () => {
    const { repo, sizes, set } = setup();
    const creating = repo.insert({ id: "creating", nickname: "", owner: "alice", spec: testSpec("c"), status: "creating" }, []);
    const failed = repo.insert({ id: "failed", nickname: "", owner: "alice", spec: testSpec("f"), status: "create error" }, []);
    expect(await sizes.of(creating)).toBeNull();
    expect(await sizes.of(failed)).toBeNull();
    expect(set).not.toHaveBeenCalled();
  });
});
