import { afterEach, describe, expect, it } from "vitest";
import { WHOLE_NODE } from "../auth/rental-ledger.js";
import { DiskService } from "../disk/service.js";
import { vmDir } from "../storage/volumes.js";
import { diskThrottleOf, effectiveIoLimits, ioLimitsOfGrant, NO_IO_LIMITS, VM_THROTTLE_GROUP } from "./io-limits.js";
import { TEST_HOST, testCreateRequest, testVms, type TestVms } from "./testing.js";

describe("io limits (pure)", () => {
  it("a grant's caps win where it sets them; the operator's defaults fill the rest", () => {
    const own = ioLimitsOfGrant({ ...WHOLE_NODE, diskMBps: 40 });
    expect(own).toEqual({ diskIops: null, diskMBps: 40, netMbit: null });
    expect(effectiveIoLimits(own, { diskIops: 500, diskMBps: 100, netMbit: 200 })).toEqual({ diskIops: 500, diskMBps: 40, netMbit: 200 });
    expect(effectiveIoLimits(undefined, NO_IO_LIMITS)).toEqual(NO_IO_LIMITS);
    // A grant that caps nothing stores nothing: the VM follows the node's defaults as they change.
    expect(ioLimitsOfGrant(WHOLE_NODE)).toBeUndefined();
    expect(ioLimitsOfGrant(undefined)).toBeUndefined();
  });

  it("turns the caps into one QEMU throttle group per VM, 0 where uncapped", () => {
    expect(diskThrottleOf({ diskIops: 500, diskMBps: null, netMbit: 10 })).toEqual({ iops: 500, bytesPerSec: 0, group: VM_THROTTLE_GROUP });
    expect(diskThrottleOf({ diskIops: null, diskMBps: 40, netMbit: null })).toEqual({ iops: 0, bytesPerSec: 40_000_000, group: VM_THROTTLE_GROUP });
    expect(diskThrottleOf({ diskIops: null, diskMBps: null, netMbit: 10 })).toBeNull();
  });
});

describe("io limits on booted VMs (fake hypervisor)", () => {
  const GiB = 2 ** 30;
  let vms: TestVms;
  afterEach(async () => {
    await vms.close();
  });
  const throttles = (id: string) => [...vms.hypervisor.disksOf(vmDir(vms.dataDir, id))].map(([disk, d]) => [disk, d.throttle ?? null]);

  it("caps every disk at boot and a hot-plugged one too; a grant's cap is kept with the VM across boots", async () => {
    vms = await testVms({ ioDefaults: { diskIops: 300, diskMBps: null, netMbit: null } });
    await vms.service.create({ ...testCreateRequest("r1", { dataDiskBytes: GiB, owner: "alice" }), quota: { ...WHOLE_NODE, diskMBps: 25 } }, { wait: true });
    expect(vms.repo.get("r1")!.spec.io).toEqual({ diskIops: null, diskMBps: 25, netMbit: null });
    const capped = { iops: 300, bytesPerSec: 25_000_000, group: VM_THROTTLE_GROUP };
    expect(throttles("r1")).toEqual([
      ["vda", capped],
      ["vdb", capped],
    ]);

    const disks = new DiskService({
      dataDir: vms.dataDir,
      vms: vms.service,
      repo: vms.repo,
      hypervisor: vms.hypervisor,
      capacity: async () => TEST_HOST,
      detachTimeoutMs: 200,
      diskThrottle: (vm) => diskThrottleOf(effectiveIoLimits(vm.spec.io, { diskIops: 300, diskMBps: null, netMbit: null })),
    });
    await disks.add("r1", GiB);
    expect(throttles("r1").at(-1)).toEqual(["vdc", capped]);

    await vms.service.act("r1", "restart", { force: true });
    expect(throttles("r1").map(([, t]) => t)).toEqual([capped, capped, capped]);
  });

  it("leaves disks uncapped when neither the grant nor the operator caps them", async () => {
    vms = await testVms();
    await vms.service.create(testCreateRequest("o1", { dataDiskBytes: GiB }), { wait: true });
    expect(throttles("o1")).toEqual([
      ["vda", null],
      ["vdb", null],
    ]);
    expect(vms.repo.get("o1")!.spec.io).toBeUndefined();
  });
});
