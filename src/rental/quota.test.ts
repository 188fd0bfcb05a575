import { describe, expect, it } from "vitest";
import { diskQuotaRefusal, parseLimits, quotaRefusal, type QuotaDemand } from "./quota.js";

const GIB = 2 ** 30;
const none = { gpus: null, cpuCores: null, memGib: null, diskGib: null, diskIops: null, diskMBps: null, netMbit: null };
const vm = (gpus: number, vcpus = 4, memGib = 8, diskGib = 0): QuotaDemand => ({ gpus, vcpus, memoryBytes: memGib * GIB, diskBytes: diskGib * GIB });

describe("quotaRefusal", () => {
  it("a renter of the whole node has no limit of its rental's own", () => {
    expect(quotaRefusal(none, [vm(4), vm(4)], vm(0, 64, 512))).toBeNull();
  });

  it("a renter of some GPUs uses them, and no more than it rents, counting its other tasks (DBC's texts)", () => {
    const two = { ...none, gpus: 2 };
    expect(quotaRefusal(two, [], vm(0))?.message).toMatch(/^only use the number what you exactly rented/);
    expect(quotaRefusal(two, [], vm(2))).toBeNull();
    expect(quotaRefusal(two, [vm(1)], vm(1))).toBeNull();
    expect(quotaRefusal(two, [vm(1)], vm(2))).toEqual({ field: "gpu_count", message: "gpu_count exceeds number of leases: 2 rented, 1 held by your other tasks here" });
  });

  it("caps vCPUs, memory and disk across the renter's tasks on the node", () => {
    const caps = { gpus: null, cpuCores: 8, memGib: 16, diskGib: 100, diskIops: null, diskMBps: null, netMbit: null };
    expect(quotaRefusal(caps, [vm(0, 4, 8, 50)], vm(0, 4, 8, 50))).toBeNull();
    expect(quotaRefusal(caps, [vm(0, 4, 8)], vm(0, 5, 1))?.field).toBe("cpu_cores");
    expect(quotaRefusal(caps, [vm(0, 4, 8)], vm(0, 4, 9))?.field).toBe("mem_size");
    expect(quotaRefusal(caps, [vm(0, 1, 1, 60)], vm(0, 1, 1, 41))).toEqual({ field: "disk_size", message: "allocate disk failed: your rental of this node gives 100G of disk, 60G promised to your other tasks" });
  });
});

describe("parseLimits", () => {
  it("takes only limits as the master sends them", () => {
    expect(parseLimits({ gpus: 2, cpuCores: null, memGib: 16, diskGib: null, diskIops: null, diskMBps: null, netMbit: null })).toEqual({ gpus: 2, cpuCores: null, memGib: 16, diskGib: null, diskIops: null, diskMBps: null, netMbit: null });
    expect(parseLimits({ gpus: 0, cpuCores: null, memGib: null, diskGib: null, diskIops: null, diskMBps: null, netMbit: null })).toBeNull();
    expect(parseLimits({ gpus: "2", cpuCores: null, memGib: null, diskGib: null, diskIops: null, diskMBps: null, netMbit: null })).toBeNull();
    expect(parseLimits({ gpus: 2 })).toBeNull();
    expect(parseLimits(null)).toBeNull();
  });
});

describe("diskQuotaRefusal", () => {
  it("caps the data disk a renter's tasks on the node are promised", () => {
    const caps = { gpus: null, cpuCores: null, memGib: null, diskGib: 100, diskIops: null, diskMBps: null, netMbit: null };
    expect(diskQuotaRefusal(caps, 60 * GIB, 40 * GIB)).toBeNull();
    expect(diskQuotaRefusal(caps, 60 * GIB, 41 * GIB)).toBe("allocate disk failed: your rental of this node gives 100G of disk, 60G promised to your tasks");
    expect(diskQuotaRefusal(none, 600 * GIB, 600 * GIB)).toBeNull();
  });
});
