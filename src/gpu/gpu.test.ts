import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb } from "../store/db.js";
import { buildFakeSysfs, eightGpuHost, FakeKernelSysfs, type FakePciDevice } from "./testing.js";
import { readGpuUnits } from "./units.js";
import { bindToVfio, releaseFromVfio } from "./vfio.js";
import { GpuAllocationError, GpuPool } from "./pool.js";
import { pinProcess } from "./numa.js";
import { exec } from "../lib/exec.js";
import { spawn } from "node:child_process";

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function host(devices: FakePciDevice[] = eightGpuHost(), opts: { vfioLoaded?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), "batu-sysfs-"));
  roots.push(root);
  buildFakeSysfs(root, devices, opts);
  return new FakeKernelSysfs(root, devices);
}

describe("readGpuUnits", () => {
  it("finds each GPU with its slot's functions, its NUMA node and its IOMMU group; bridges are no obstacle", async () => {
    const units = await readGpuUnits(host(), { nvidiaSmi: false });
    expect(units.map((u) => u.address)).toEqual(["0000:1b:00.0", "0000:1c:00.0", "0000:3d:00.0", "0000:3e:00.0", "0000:b1:00.0", "0000:b2:00.0", "0000:da:00.0", "0000:db:00.0"]);
    expect(units[0]).toEqual({ address: "0000:1b:00.0", functions: ["0000:1b:00.0", "0000:1b:00.1"], vendor: "NVIDIA", model: "10de:2330", memoryMiB: null, numaNode: 0, iommuGroup: 20, unavailable: null });
    expect(units.map((u) => u.numaNode)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it("says why a GPU cannot be passed through: no IOMMU, the boot display, a group shared with a disk controller, no vfio-pci", async () => {
    const devices = eightGpuHost();
    const at = (a: string) => devices.find((d) => d.address === a)!;
    at("0000:1b:00.0").bootVga = true;
    for (const a of ["0000:1c:00.0", "0000:1c:00.1"]) at(a).iommuGroup = null;
    devices.push({ address: "0000:3d:00.2", vendor: "0x10de", device: "0x1ad8", class: "0x0c0330", driver: "xhci_hcd", iommuGroup: 22, numaNode: 0 });
    devices.push({ address: "0000:3f:00.0", vendor: "0x144d", device: "0xa80a", class: "0x010802", driver: "nvme", iommuGroup: 23, numaNode: 0 });
    const units = await readGpuUnits(host(devices), { nvidiaSmi: false });
    const why = Object.fromEntries(units.map((u) => [u.address, u.unavailable]));
    expect(why["0000:1b:00.0"]).toBe("it is the host's boot display");
    expect(why["0000:1c:00.0"]).toMatch(/^the IOMMU is off/);
    // The USB-C controller of the same slot goes with the GPU: no obstacle.
    expect(why["0000:3d:00.0"]).toBeNull();
    expect(units.find((u) => u.address === "0000:3d:00.0")!.functions).toEqual(["0000:3d:00.0", "0000:3d:00.1", "0000:3d:00.2"]);
    expect(why["0000:3e:00.0"]).toBe("its IOMMU group 23 also holds 0000:3f:00.0 (class 0x010802), which would go to the guest too");
    // A BMC's display (ASPEED) is the operator's console, never a renter's GPU.
    const bmc = [...eightGpuHost(), { address: "0000:03:00.0", vendor: "0x1a03", device: "0x2000", class: "0x030000", driver: "ast", iommuGroup: 40, numaNode: 0 }];
    expect((await readGpuUnits(host(bmc), { nvidiaSmi: false })).find((u) => u.address === "0000:03:00.0")!.unavailable).toMatch(/^not a GPU batu passes through \(vendor 1a03/);
    const noVfio = await readGpuUnits(host(eightGpuHost(), { vfioLoaded: false }), { nvidiaSmi: false });
    expect(noVfio.every((u) => u.unavailable === "the vfio-pci driver is not loaded (modprobe vfio-pci)")).toBe(true);
  });
});

describe("vfio binding", () => {
  it("binds every function to vfio-pci the kernel's way, does nothing for one bound already, and gives them back", async () => {
    const sysfs = host();
    const fns = ["0000:1b:00.0", "0000:1b:00.1"];
    await bindToVfio(sysfs, fns);
    expect(sysfs.writes).toEqual([
      { path: "bus/pci/devices/0000:1b:00.0/driver_override", value: "vfio-pci" },
      { path: "bus/pci/devices/0000:1b:00.0/driver/unbind", value: "0000:1b:00.0" },
      { path: "bus/pci/drivers_probe", value: "0000:1b:00.0" },
      { path: "bus/pci/devices/0000:1b:00.1/driver_override", value: "vfio-pci" },
      { path: "bus/pci/devices/0000:1b:00.1/driver/unbind", value: "0000:1b:00.1" },
      { path: "bus/pci/drivers_probe", value: "0000:1b:00.1" },
    ]);
    expect(fns.map((a) => sysfs.boundTo(a))).toEqual(["vfio-pci", "vfio-pci"]);
    sysfs.writes.length = 0;
    await bindToVfio(sysfs, fns);
    expect(sysfs.writes).toEqual([]);
    await releaseFromVfio(sysfs, fns);
    expect(fns.map((a) => sysfs.boundTo(a))).toEqual(["nvidia", "snd_hda_intel"]);
  });

  it("leaves nothing half bound when a function refuses vfio-pci", async () => {
    const devices = eightGpuHost();
    const root = mkdtempSync(join(tmpdir(), "batu-sysfs-"));
    roots.push(root);
    buildFakeSysfs(root, devices);
    // A kernel whose vfio-pci will not take the audio function.
    const sysfs = new (class extends FakeKernelSysfs {
      override async write(path: string, value: string): Promise<void> {
        if (path === "bus/pci/drivers_probe" && value === "0000:1b:00.1" && this.writes.some((w) => w.path.endsWith("00.1/driver_override") && w.value === "vfio-pci") && !this.writes.some((w) => w.path.endsWith("00.1/driver_override") && w.value.trim() === "")) {
          this.writes.push({ path, value });
          return;
        }
        return super.write(path, value);
      }
    })(root, devices);
    await expect(bindToVfio(sysfs, ["0000:1b:00.0", "0000:1b:00.1"])).rejects.toThrow("0000:1b:00.1 did not bind to vfio-pci (bound to no driver)");
    expect(sysfs.boundTo("0000:1b:00.0")).toBe("nvidia");
    expect(sysfs.boundTo("0000:1b:00.1")).toBe("snd_hda_intel");
  });
});

describe("GpuPool", () => {
  it("gives whole GPUs on one NUMA node when one fits, never one GPU twice, and frees them", async () => {
    const units = await readGpuUnits(host(), { nvidiaSmi: false });
    const pool = new GpuPool(openDb(":memory:"));
    const a = pool.allocate("vm-a", 3, units);
    expect(a).toEqual(["0000:1b:00.0", "0000:1c:00.0", "0000:3d:00.0"]);
    // Two more: node 0 has one left, node 1 four: they go on node 1.
    expect(pool.allocate("vm-b", 2, units)).toEqual(["0000:b1:00.0", "0000:b2:00.0"]);
    // Asked again (a restart), a VM keeps what it holds.
    expect(pool.allocate("vm-a", 3, units)).toEqual(a);
    expect(() => pool.allocate("vm-c", 4, units)).toThrow(GpuAllocationError);
    expect(() => pool.allocate("vm-c", 4, units)).toThrow("allocate gpu failed: 4 GPUs asked, 3 free for passthrough on this host");
    expect(pool.release("vm-a")).toEqual(a);
    expect(pool.allocate("vm-c", 4, units)).toHaveLength(4);
    expect(new Set(pool.holders().keys()).size).toBe(6);
  });

  it("keeps only the running VMs' GPUs at agent start", async () => {
    const units = await readGpuUnits(host(), { nvidiaSmi: false });
    const pool = new GpuPool(openDb(":memory:"));
    pool.allocate("vm-a", 1, units);
    pool.allocate("vm-b", 2, units);
    expect(pool.retain(new Set(["vm-b"]))).toEqual(["0000:1b:00.0"]);
    expect([...pool.holders().values()]).toEqual(["vm-b", "vm-b"]);
  });

  it("never gives an unavailable GPU", async () => {
    const devices = eightGpuHost();
    devices[0]!.bootVga = true;
    const units = await readGpuUnits(host(devices), { nvidiaSmi: false });
    const pool = new GpuPool(openDb(":memory:"));
    expect(pool.allocate("vm-a", 7, units)).not.toContain("0000:1b:00.0");
    expect(() => pool.allocate("vm-b", 1, units)).toThrow(GpuAllocationError);
  });
});

describe("pinProcess", () => {
  it("pins every thread of a real process to a CPU list", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      await pinProcess(child.pid!, "0");
      const { stdout } = await exec("taskset", ["--pid", "--cpu-list", String(child.pid)]);
      expect(stdout.trim()).toMatch(/: 0$/);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
