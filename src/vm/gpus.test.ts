// GPUs through the VM lifecycle, on a fake 8-GPU host (sysfs tree and a kernel that binds drivers)
// under the fake hypervisor: QEMU cannot start with fake devices, everything else is batu's own.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../lib/logger.js";
import { GpuPool } from "../gpu/pool.js";
import { buildFakeSysfs, eightGpuHost, FakeKernelSysfs } from "../gpu/testing.js";
import { prepared } from "../store/db.js";
import { PassthroughGpus } from "./guest-gpus.js";
import { VmResourceError } from "./service.js";
import { testCreateRequest, testVms, type TestVms } from "./testing.js";

let vms: TestVms;
let sysfs: FakeKernelSysfs;
let root: string;
let gpus: PassthroughGpus | undefined;
let pins: Array<{ pid: number; list: string }>;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), "batu-sysfs-"));
  const devices = eightGpuHost();
  buildFakeSysfs(root, devices);
  sysfs = new FakeKernelSysfs(root, devices);
  pins = [];
  vms = await testVms({
    host: { cpuThreads: 64, memoryBytes: 256 * 2 ** 30 },
    gpus: (db) =>
      (gpus = new PassthroughGpus({
        sysfs,
        pool: new GpuPool(db),
        releaseToHost: false,
        nvidiaSmi: false,
        pin: async (pid, list) => void pins.push({ pid, list }),
        log: createLogger({ level: "silent" }),
      })),
  });
});
afterEach(async () => {
  await vms.close();
  rmSync(root, { recursive: true, force: true });
});

const lastSpec = () => vms.hypervisor.started.at(-1)!;

describe("GPUs through the VM lifecycle", () => {
  it("a VM with GPUs boots on q35 with whole GPUs bound to vfio-pci, on one NUMA node; they are free again when it stops", async () => {
    const vm = await vms.service.create(testCreateRequest("gpu-a", { gpuCount: 2 }), { wait: true });
    expect(vm.status).toBe("running");
    const spec = lastSpec();
    expect(spec.machine).toBe("q35");
    expect(spec.gpus).toEqual([
      { pciAddress: "0000:1b:00.0", functions: ["0000:1b:00.1"] },
      { pciAddress: "0000:1c:00.0", functions: ["0000:1c:00.1"] },
    ]);
    for (const f of ["0000:1b:00.0", "0000:1b:00.1", "0000:1c:00.0", "0000:1c:00.1"]) expect(sysfs.boundTo(f)).toBe("vfio-pci");
    expect(sysfs.boundTo("0000:3d:00.0")).toBe("nvidia");
    const inventory = await gpus!.inventory();
    expect(inventory.filter((g) => g.state === "in use").map((g) => [g.address, g.vmId])).toEqual([
      ["0000:1b:00.0", "gpu-a"],
      ["0000:1c:00.0", "gpu-a"],
    ]);
    await vms.service.act("gpu-a", "poweroff");
    expect((await gpus!.inventory()).every((g) => g.state === "free")).toBe(true);
    // They stay on vfio-pci (gpu_release_to_host off): the next VM takes them without a rebind.
    expect(sysfs.boundTo("0000:1b:00.0")).toBe("vfio-pci");
  });

  it("pins a GPU VM's QEMU to the CPUs of its GPUs' NUMA node; one whose GPUs span nodes is left alone", async () => {
    await vms.service.create(testCreateRequest("near", { gpuCount: 2 }), { wait: true });
    expect(pins).toEqual([{ pid: vms.repo.get("near")!.pid, list: "0-15,32-47" }]);
    // Two left on node 0, four on node 1: five GPUs span both.
    await vms.service.create(testCreateRequest("wide", { gpuCount: 5 }), { wait: true });
    expect(pins).toHaveLength(1);
    await vms.service.create(testCreateRequest("plain"), { wait: true });
    expect(pins).toHaveLength(1);
  });

  it("refuses more GPUs than are free, at creation and in tasks/modify; a GPU is never in two VMs", async () => {
    await vms.service.create(testCreateRequest("gpu-a", { gpuCount: 3 }), { wait: true });
    const refused = vms.service.create(testCreateRequest("gpu-b", { gpuCount: 6 }), { wait: true });
    await expect(refused).rejects.toBeInstanceOf(VmResourceError);
    await expect(refused).rejects.toThrow("allocate gpu failed: 6 asked, 5 of the host's 8 usable GPUs free");
    expect(vms.repo.get("gpu-b")).toBeUndefined();
    await vms.service.create(testCreateRequest("gpu-b", { gpuCount: 5 }), { wait: true });
    const addresses = (await gpus!.inventory()).filter((g) => g.state === "in use");
    expect(addresses).toHaveLength(8);
    expect(new Set(addresses.map((g) => g.address)).size).toBe(8);
    await expect(vms.service.modify("gpu-a", { gpuCount: 4 })).rejects.toThrow(/allocate gpu failed/);
    // Fewer is stored and taken at the next boot (DBC's rule for gpu changes).
    expect(await vms.service.modify("gpu-a", { gpuCount: 1 })).toEqual({ nextBoot: true });
    await vms.service.act("gpu-a", "poweroff");
    await vms.service.act("gpu-a", "start");
    expect(lastSpec().gpus).toHaveLength(1);
  });

  it("a crashed QEMU frees its GPUs; an agent killed before it could is made whole at its next start", async () => {
    await vms.service.create(testCreateRequest("gpu-a", { gpuCount: 2 }), { wait: true });
    await vms.service.create(testCreateRequest("gpu-b", { gpuCount: 1 }), { wait: true });
    const runDirA = vms.hypervisor.running().find((d) => d.includes("gpu-a"))!;
    await vms.hypervisor.crash(runDirA);
    await expect.poll(async () => (await gpus!.inventory()).filter((g) => g.vmId === "gpu-a").length).toBe(0);
    // What an agent SIGKILLed between QEMU's end and the release leaves: a row for a VM that does not run.
    prepared(vms.db, "INSERT INTO vm_gpus (pci_address, vm_id) VALUES (?, ?)").run("0000:3e:00.0", "gpu-a");
    await (await vms.restart()).service.reconcile();
    const after = (await gpus!.inventory()).filter((g) => g.state === "in use").map((g) => g.vmId);
    expect(after).toEqual(["gpu-b"]);
  });
});

describe("a renter's rental of some GPUs", () => {
  const rentsTwo = { gpus: 2, cpuCores: 8, memGib: null, diskGib: null, diskIops: null, diskMBps: null, netMbit: null };

  it("holds its tasks to the GPUs and vCPUs it rents, and forbids changing GPUs, CPUs or memory (DBC)", async () => {
    await expect(vms.service.create({ ...testCreateRequest("r-0", { gpuCount: 0 }), quota: rentsTwo }, { wait: true })).rejects.toThrow(/^only use the number what you exactly rented/);
    await vms.service.create({ ...testCreateRequest("r-1", { gpuCount: 1, cores: 4, vcpus: 4 }), quota: rentsTwo }, { wait: true });
    await expect(vms.service.create({ ...testCreateRequest("r-2", { gpuCount: 2 }), quota: rentsTwo }, { wait: true })).rejects.toThrow(/^gpu_count exceeds number of leases/);
    await expect(vms.service.create({ ...testCreateRequest("r-3", { gpuCount: 1, cores: 5, vcpus: 5 }), quota: rentsTwo }, { wait: true })).rejects.toThrow(/^allocate cpu failed: your rental/);
    // Another renter's tasks do not count against this one's rental.
    await vms.service.create({ ...testCreateRequest("o-1", { gpuCount: 3, owner: "bob" }), quota: { ...rentsTwo, gpus: 3 } }, { wait: true });
    await vms.service.create({ ...testCreateRequest("r-4", { gpuCount: 1 }), quota: rentsTwo }, { wait: true });
    await expect(vms.service.modify("r-1", { gpuCount: 2 }, rentsTwo)).rejects.toThrow("can not modify gpu count");
    await expect(vms.service.modify("r-1", { cores: 2 }, rentsTwo)).rejects.toThrow("can not modify cpu cores");
    await expect(vms.service.modify("r-1", { memoryMiB: 1024 }, rentsTwo)).rejects.toThrow("can not modify mem size");
    expect((await gpus!.inventory()).filter((g) => g.state === "in use")).toHaveLength(5);
  });

  it("starts a stopped task only within the rental as it is now (a rental cut since refuses it); its new caps apply from that boot", async () => {
    await vms.service.create({ ...testCreateRequest("r-1", { gpuCount: 1 }), quota: rentsTwo }, { wait: true });
    await vms.service.create({ ...testCreateRequest("r-2", { gpuCount: 1 }), quota: rentsTwo }, { wait: true });
    await vms.service.act("r-2", "poweroff");
    const cut = { ...rentsTwo, gpus: 1 };
    expect(() => vms.service.begin("r-2", "start", { quota: cut })).toThrow(/^gpu_count exceeds number of leases: 1 rented, 1 held/);
    expect(vms.repo.get("r-2")!.status).toBe("closed");
    // Regranted with two GPUs again and a network cap: the start goes ahead under it.
    const op = vms.service.begin("r-2", "start", { quota: { ...rentsTwo, netMbit: 30 } });
    for (let i = 0; i < 500 && vms.queries.operation(op.id)?.state === "running"; i++) await new Promise((r) => setTimeout(r, 10));
    expect(vms.queries.operation(op.id)?.state).toBe("done");
    expect(vms.repo.get("r-2")!.spec.io).toEqual({ diskIops: null, diskMBps: null, netMbit: 30 });
  });
});
