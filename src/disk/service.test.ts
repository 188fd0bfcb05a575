import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { imageInfo } from "../storage/qemu-img.js";
import { vmDir } from "../storage/volumes.js";
import { TEST_HOST, testCreateRequest, testVms, type TestVms } from "../vm/testing.js";
import type { VmStatus } from "../vm/state.js";
import { DiskService, nextDiskName } from "./service.js";

const GiB = 2 ** 30;
let vms: TestVms;
let disks: DiskService;

beforeEach(async () => {
  vms = await testVms({ shutdownTimeoutMs: 300, host: { diskTotalBytes: 20 * GiB, diskFreeBytes: 20 * GiB } });
  disks = new DiskService({
    dataDir: vms.dataDir,
    vms: vms.service,
    repo: vms.repo,
    hypervisor: vms.hypervisor,
    capacity: async () => ({ ...TEST_HOST, diskTotalBytes: 20 * GiB, diskFreeBytes: 20 * GiB }),
    detachTimeoutMs: 200,
  });
});
afterEach(async () => {
  await vms.close();
});

const file = (id: string, name: string) => join(vmDir(vms.dataDir, id), `${name}.qcow2`);
const runDir = (id: string) => vmDir(vms.dataDir, id);
const sizeOf = async (id: string, name: string) => (await imageInfo(file(id, name), { shared: true })).virtualSizeBytes;

describe("DiskService", () => {
  it("adds a disk to a running VM: file made, recorded, hot-plugged; the next one is named after the last", async () => {
    await vms.service.create(testCreateRequest("a1", { dataDiskBytes: GiB }), { wait: true });
    for (let i = 0; i < 100 && !vms.repo.get("a1")!.ready; i++) await new Promise((r) => setTimeout(r, 10));
    const statuses: VmStatus[] = [];
    vms.queries.onChange((c) => statuses.push(c.status as VmStatus));
    expect(await disks.add("a1", 2 * GiB)).toEqual({ name: "vdc" });
    expect(statuses).toEqual(["disk adding", "running"]);
    expect(await sizeOf("a1", "vdc")).toBe(2 * GiB);
    expect(vms.hypervisor.disksOf(runDir("a1")).get("vdc")).toEqual({ path: file("a1", "vdc"), sizeBytes: null });
    expect(await disks.add("a1", GiB)).toEqual({ name: "vdd" });
    const vm = vms.repo.get("a1")!;
    expect((await disks.list(vm)).map((d) => [d.name, d.file, d.sizeBytes])).toEqual([
      ["vda", "vda.qcow2", 8 * 2 ** 20],
      ["vdb", "vdb.qcow2", GiB],
      ["vdc", "vdc.qcow2", 2 * GiB],
      ["vdd", "vdd.qcow2", GiB],
    ]);
    // The next boot gives QEMU every disk.
    await vms.service.act("a1", "restart", { force: false });
    expect(vms.hypervisor.started.at(-1)!.disks.map((d) => d.id)).toEqual(["vda", "vdb", "vdc", "vdd"]);
    expect(vms.repo.logLines("a1", { from: "tail", count: 20 }).join("\n")).toMatch(/disk vdc added: 2G \(hot-plugged\)/);
  });

  it("grows a disk by the size asked (DBC's meaning), live on a running VM and on file when shut off", async () => {
    await vms.service.create(testCreateRequest("a1", { dataDiskBytes: GiB }), { wait: true });
    expect(await disks.resize("a1", "vdb", GiB)).toEqual({ sizeBytes: 2 * GiB });
    expect(vms.hypervisor.disksOf(runDir("a1")).get("vdb")?.sizeBytes).toBe(2 * GiB);
    expect(vms.repo.get("a1")!.spec.dataDiskBytes).toBe(2 * GiB);
    await vms.service.act("a1", "poweroff");
    await disks.add("a1", GiB);
    expect(await disks.resize("a1", "vdc", 3 * GiB)).toEqual({ sizeBytes: 4 * GiB });
    expect(await sizeOf("a1", "vdc")).toBe(4 * GiB);
    expect(vms.repo.get("a1")!.spec.extraDisks).toEqual([{ name: "vdc", sizeBytes: 4 * GiB }]);
    expect(vms.repo.get("a1")!.status).toBe("closed");
  });

  it("deletes a data disk: unplugged live, unrecorded, its file removed; vda never", async () => {
    await vms.service.create(testCreateRequest("a1", { dataDiskBytes: GiB }), { wait: true });
    await disks.add("a1", GiB);
    await disks.remove("a1", "vdb");
    expect(vms.hypervisor.disksOf(runDir("a1")).has("vdb")).toBe(false);
    expect(existsSync(file("a1", "vdb"))).toBe(false);
    expect(vms.repo.get("a1")!.spec).toMatchObject({ dataDiskBytes: null, extraDisks: [{ name: "vdc", sizeBytes: GiB }] });
    await expect(disks.remove("a1", "vda")).rejects.toMatchObject({ field: "disk", message: "can not allowed to delete disk:'vda'" });
    await expect(disks.remove("a1", "vdx")).rejects.toMatchObject({ message: "task have no disk:vdx" });
  });

  it("a guest that does not release a disk keeps it, recorded, with the reason as the VM's last error", async () => {
    await vms.service.create(testCreateRequest("a1", { dataDiskBytes: GiB }), { wait: true });
    vms.hypervisor.guestsReleaseDisks = false;
    await expect(disks.remove("a1", "vdb")).rejects.toThrow(/did not release disk vdb/);
    expect(existsSync(file("a1", "vdb"))).toBe(true);
    expect(vms.repo.get("a1")).toMatchObject({ status: "running", spec: { dataDiskBytes: GiB }, lastError: expect.stringMatching(/did not release/) });
  });

  it("refuses what does not fit, bad sizes, and a busy VM, changing nothing", async () => {
    await vms.service.create(testCreateRequest("a1"), { wait: true });
    await expect(disks.add("a1", 30 * GiB)).rejects.toMatchObject({ field: "size", message: expect.stringMatching(/^allocate disk failed/) });
    await expect(disks.add("a1", 0)).rejects.toMatchObject({ message: "'size' is invalid" });
    await expect(disks.add("a1", 1.5)).rejects.toMatchObject({ message: "'size' is invalid" });
    expect(vms.repo.get("a1")!.spec.extraDisks).toBeUndefined();
    expect(existsSync(file("a1", "vdb"))).toBe(false);
    // A failed hot-plug leaves neither file nor record.
    vms.hypervisor.attachDisk = async () => {
      throw new Error("device_add failed");
    };
    await expect(disks.add("a1", GiB)).rejects.toThrow("device_add failed");
    expect(vms.repo.get("a1")!.spec.extraDisks).toBeUndefined();
    expect(existsSync(file("a1", "vdb"))).toBe(false);
    expect(vms.repo.get("a1")!.status).toBe("running");
  });

  it("keeps each renter within the operator's disk quota, counting its VMs' disks at full size; the operator has none", async () => {
    const quota = { ...TEST_HOST, diskTotalBytes: 20 * GiB, diskFreeBytes: 20 * GiB, renterDiskQuotaBytes: 3 * GiB };
    vms = await vms.close().then(() => testVms({ shutdownTimeoutMs: 300, host: quota }));
    disks = new DiskService({ dataDir: vms.dataDir, vms: vms.service, repo: vms.repo, hypervisor: vms.hypervisor, capacity: async () => quota, detachTimeoutMs: 200 });
    await vms.service.create(testCreateRequest("a1", { owner: "alice", dataDiskBytes: GiB }), { wait: true });
    // vda (8 MiB) + vdb (1 GiB) held: 2 GiB more would pass 3 GiB.
    await expect(disks.add("a1", 2 * GiB)).rejects.toMatchObject({ field: "size", message: /renter's disk quota is 3\.0 GiB, 1\.0 GiB held, 2\.0 GiB more asked/ });
    await disks.add("a1", GiB);
    await expect(disks.resize("a1", "vdc", GiB)).rejects.toMatchObject({ field: "size", message: /disk quota/ });
    // A new task counts against the same quota; another renter and the operator are not held to alice's.
    await expect(vms.service.create(testCreateRequest("a2", { owner: "alice", dataDiskBytes: GiB }), { wait: true })).rejects.toMatchObject({ message: /disk quota/ });
    await vms.service.create(testCreateRequest("b1", { owner: "bob", dataDiskBytes: 2 * GiB }), { wait: true });
    await vms.service.create(testCreateRequest("op", { owner: null, dataDiskBytes: 5 * GiB }), { wait: true });
    expect(vms.repo.get("a2")).toBeUndefined();
  });

  it("names disks vdb … vdz", () => {
    const base = { dataDiskBytes: null, dataFileName: null } as never;
    expect(nextDiskName(base)).toBe("vdb");
    expect(nextDiskName({ ...(base as object), dataDiskBytes: GiB, extraDisks: [{ name: "vdy", sizeBytes: 1 }] } as never)).toBe("vdz");
    expect(nextDiskName({ ...(base as object), extraDisks: [{ name: "vdz", sizeBytes: 1 }] } as never)).toBeUndefined();
  });
});
