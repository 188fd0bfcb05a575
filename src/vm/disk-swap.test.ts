import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDb } from "../store/db.js";
import { preparedDiskPath, settleDiskSwap } from "./disk-swap.js";
import { VmRepo } from "./repo.js";
import { testCreateRequest } from "./testing.js";
import { specFrom } from "./create-request.js";

let dir: string;
let repo: VmRepo;
const vmFolder = () => join(dir, "vms", "a1");

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "batu-swap-"));
  mkdirSync(vmFolder(), { recursive: true });
  repo = new VmRepo(openDb(join(dir, "batu.db")));
  const req = testCreateRequest("a1", { dataDiskBytes: 2 ** 20 });
  repo.insert({ id: "a1", taskId: "a1", nickname: "a1", owner: "alice", spec: specFrom(req, [{ port: 5901, proto: "tcp", kind: "vnc" }], "root"), status: "snapshot restoring" }, []);
  writeFileSync(join(vmFolder(), "vda.qcow2"), "old vda");
  writeFileSync(join(vmFolder(), "vdb.qcow2"), "old vdb");
  writeFileSync(preparedDiskPath(dir, "a1", "vda"), "new vda");
  writeFileSync(preparedDiskPath(dir, "a1", "vdb"), "new vdb");
  writeFileSync(preparedDiskPath(dir, "a1", "vdc"), "new vdc");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("a disk swap an agent stop cut short", () => {
  it("without its journal is undone: the prepared files go, the VM keeps its disks and record", async () => {
    expect(await settleDiskSwap(dir, "a1", repo)).toBe(false);
    expect(readFileSync(join(vmFolder(), "vda.qcow2"), "utf8")).toBe("old vda");
    expect(existsSync(preparedDiskPath(dir, "a1", "vdb"))).toBe(false);
    expect(existsSync(join(vmFolder(), "vdc.qcow2"))).toBe(false);
    expect(repo.get("a1")!.spec.extraDisks).toBeUndefined();
  });

  it("with its journal is finished, however far it got: every disk swapped, the record following", async () => {
    writeFileSync(join(vmFolder(), "restore.json"), JSON.stringify({ imageName: "snap-a1-s.qcow2", dataDisks: [{ name: "vdb", sizeBytes: 4 }, { name: "vdc", sizeBytes: 8 }] }));
    // vda was swapped already before the stop.
    writeFileSync(join(vmFolder(), "vda.qcow2"), "new vda");
    rmSync(preparedDiskPath(dir, "a1", "vda"));
    expect(await settleDiskSwap(dir, "a1", repo)).toBe(true);
    for (const d of ["vda", "vdb", "vdc"]) expect(readFileSync(join(vmFolder(), `${d}.qcow2`), "utf8")).toBe(`new ${d}`);
    expect(existsSync(join(vmFolder(), "restore.json"))).toBe(false);
    const vm = repo.get("a1")!;
    expect(vm.imageName).toBe("snap-a1-s.qcow2");
    expect(vm.spec).toMatchObject({ dataDiskBytes: 4, extraDisks: [{ name: "vdc", sizeBytes: 8 }] });
  });
});
