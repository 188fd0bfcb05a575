import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecError } from "../lib/index.js";
import { listGpus, normalizePciAddress, parseNvidiaSmiCsv, queryNvidiaSmi } from "./gpu-inventory.js";

let root: string;
let sysfs: string;

interface FakeDevice {
  address: string;
  cls: string;
  vendor: string;
  device: string;
  driver?: string;
  group?: number;
  bootVga?: boolean;
}

/** Builds sysfs the way the kernel lays it out: devices under /sys/devices, links elsewhere. */
async function fakeDevice(d: FakeDevice): Promise<void> {
  const real = join(sysfs, "devices", "pci0000:00", d.address);
  await mkdir(real, { recursive: true });
  await writeFile(join(real, "class"), `${d.cls}\n`);
  await writeFile(join(real, "vendor"), `0x${d.vendor}\n`);
  await writeFile(join(real, "device"), `0x${d.device}\n`);
  if (d.bootVga !== undefined) await writeFile(join(real, "boot_vga"), d.bootVga ? "1\n" : "0\n");
  if (d.driver) {
    await mkdir(join(sysfs, "bus", "pci", "drivers", d.driver), { recursive: true });
    await symlink(join("..", "..", "..", "bus", "pci", "drivers", d.driver), join(real, "driver"));
  }
  if (d.group !== undefined) {
    const g = join(sysfs, "kernel", "iommu_groups", String(d.group), "devices");
    await mkdir(g, { recursive: true });
    await symlink(join("..", "..", "..", "kernel", "iommu_groups", String(d.group)), join(real, "iommu_group"));
    await symlink(real, join(g, d.address));
  }
  await symlink(join("..", "..", "..", "devices", "pci0000:00", d.address), join(sysfs, "bus", "pci", "devices", d.address));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "batu-gpu-"));
  sysfs = join(root, "sys");
  await mkdir(join(sysfs, "bus", "pci", "devices"), { recursive: true });
  await fakeDevice({ address: "0000:00:00.0", cls: "0x060000", vendor: "8086", device: "1237" }); // host bridge
  await fakeDevice({ address: "0000:00:02.0", cls: "0x030000", vendor: "1a03", device: "2000", driver: "ast", group: 1, bootVga: true });
  await fakeDevice({ address: "0000:07:00.0", cls: "0x030000", vendor: "10de", device: "2204", driver: "nvidia", group: 20, bootVga: false });
  await fakeDevice({ address: "0000:07:00.1", cls: "0x040300", vendor: "10de", device: "1aef", driver: "snd_hda_intel", group: 20 });
  await fakeDevice({ address: "0000:41:00.0", cls: "0x030200", vendor: "10de", device: "20b0", driver: "vfio-pci", group: 33 });
  await fakeDevice({ address: "0000:c1:00.0", cls: "0x038000", vendor: "1002", device: "740f" }); // no driver, no IOMMU
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function fakeNvidiaSmi(body: string): Promise<string> {
  const path = join(root, `nvidia-smi-${Math.random().toString(36).slice(2)}`);
  await writeFile(path, `#!/bin/sh\necho "$@" > "${path}.args"\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

describe("GPU inventory from a fake sysfs", () => {
  it("lists display controllers only, with vendor, driver and IOMMU group", async () => {
    const gpus = await listGpus({ sysfsRoot: sysfs, nvidiaSmi: false });
    expect(gpus.map((g) => g.pciAddress)).toEqual(["0000:00:02.0", "0000:07:00.0", "0000:41:00.0", "0000:c1:00.0"]);
    expect(gpus[0]).toEqual({
      pciAddress: "0000:00:02.0",
      vendorId: "1a03",
      deviceId: "2000",
      classCode: "0x030000",
      vendorName: null,
      driver: "ast",
      iommuGroup: 1,
      iommuGroupDevices: [],
      bootVga: true,
    });
    expect(gpus[1]).toMatchObject({
      vendorName: "NVIDIA",
      deviceId: "2204",
      driver: "nvidia",
      iommuGroup: 20,
      iommuGroupDevices: ["0000:07:00.1"],
      bootVga: false,
    });
    expect(gpus[2]).toMatchObject({ classCode: "0x030200", driver: "vfio-pci", iommuGroup: 33 });
    expect(gpus[3]).toMatchObject({ vendorName: "AMD", driver: null, iommuGroup: null, iommuGroupDevices: [] });
  });

  it("adds model and memory from nvidia-smi, matched by PCI address, called with fixed argv", async () => {
    const smi = await fakeNvidiaSmi(
      `printf '0, NVIDIA GeForce RTX 3090, 00000000:07:00.0, 24576, 1024, GPU-aaaa-bbbb\\n1, Ghost GPU, 00000000:99:00.0, 1, 1, GPU-x\\n'`,
    );
    const gpus = await listGpus({ sysfsRoot: sysfs, nvidiaSmi: smi });
    expect(gpus[1]).toMatchObject({
      model: "NVIDIA GeForce RTX 3090",
      memoryTotalMiB: 24576,
      memoryUsedMiB: 1024,
      uuid: "GPU-aaaa-bbbb",
      nvidiaIndex: 0,
    });
    expect(gpus[2]?.model).toBeUndefined(); // bound to vfio-pci: nvidia-smi cannot see it
    expect((await readFile(`${smi}.args`, "utf8")).trim()).toBe(
      "--query-gpu=index,name,pci.bus_id,memory.total,memory.used,uuid --format=csv,noheader,nounits",
    );
  });

  it("still lists GPUs when nvidia-smi fails, and warns", async () => {
    const smi = await fakeNvidiaSmi(`echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" >&2; exit 9`);
    const warnings: unknown[] = [];
    const gpus = await listGpus({ sysfsRoot: sysfs, nvidiaSmi: smi, onWarning: (_m, e) => warnings.push(e) });
    expect(gpus).toHaveLength(4);
    expect(gpus[1]?.model).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toBeInstanceOf(ExecError);
    expect((warnings[0] as ExecError).exitCode).toBe(9);
  });

  it("times out a hanging nvidia-smi", async () => {
    const smi = await fakeNvidiaSmi("exec sleep 5"); // exec: a grandchild would hold the pipes open past the kill
    await expect(queryNvidiaSmi(smi, { timeoutMs: 200 })).rejects.toBeInstanceOf(ExecError);
  });

  it("skips nvidia-smi that is not installed", async () => {
    expect(await queryNvidiaSmi(join(root, "no-such-nvidia-smi"))).toBeNull();
    expect(await listGpus({ sysfsRoot: sysfs, nvidiaSmi: "batu-no-such-binary" })).toHaveLength(4);
  });

  it("returns an empty list for a sysfs without PCI devices", async () => {
    expect(await listGpus({ sysfsRoot: join(root, "empty"), nvidiaSmi: false })).toEqual([]);
  });
});

describe("nvidia-smi parsing", () => {
  it("parses CSV lines, tolerating [N/A] and junk", () => {
    expect(
      parseNvidiaSmiCsv("0, A100-SXM4-40GB, 00000000:07:00.0, 40960, [N/A], GPU-1\n\nNo devices were found\n"),
    ).toEqual([
      { index: 0, name: "A100-SXM4-40GB", pciAddress: "0000:07:00.0", memoryTotalMiB: 40960, memoryUsedMiB: 0, uuid: "GPU-1" },
    ]);
  });

  it("normalizes PCI addresses", () => {
    expect(normalizePciAddress("00000000:07:00.0")).toBe("0000:07:00.0");
    expect(normalizePciAddress("0000:C1:00.0")).toBe("0000:c1:00.0");
    expect(normalizePciAddress("07:00.0")).toBe("0000:07:00.0");
    expect(normalizePciAddress("00000001:0A:1F.7")).toBe("0001:0a:1f.7");
  });
});

describe("GPU inventory of this machine", () => {
  it("reads the real sysfs and returns a list (possibly empty)", async () => {
    const gpus = await listGpus();
    expect(Array.isArray(gpus)).toBe(true);
    for (const g of gpus) expect(g.classCode.startsWith("0x03")).toBe(true);
  });
});
