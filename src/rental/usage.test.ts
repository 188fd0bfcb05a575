import { describe, expect, it } from "vitest";
import { openDb } from "../store/db.js";
import { testSpec } from "../vm/testing.js";
import { UsageLedger, usageCsv } from "./usage.js";

const t0 = Date.parse("2026-11-01T00:00:00Z");
const H = 3_600_000;

function ledger() {
  const clock = { t: t0 };
  return { usage: new UsageLedger(openDb(":memory:"), () => new Date(clock.t)), clock };
}
const vm = (id: string, owner: string | null, gpus: number, cores = 4, memoryMiB = 8192) => ({
  id,
  taskId: id,
  owner,
  spec: { ...testSpec(id), cpu: { cores, threads: 1 }, memoryMiB, gpuCount: gpus },
});

describe("UsageLedger", () => {
  it("sums each renter's VM-, vCPU-, memory- and GPU-hours over the period, clipping stretches to it", () => {
    const { usage, clock } = ledger();
    usage.running(vm("a", "alice", 2));
    clock.t += 2 * H;
    usage.running(vm("a", "alice", 2)); // still running: no second stretch
    usage.running(vm("b", "bob", 1, 8, 16384));
    clock.t += 1 * H;
    usage.stopped("a");
    clock.t += 3 * H;
    const lines = usage.report(new Date(t0), new Date(clock.t));
    expect(lines).toEqual([
      { renter: "alice", vmHours: 3, vcpuHours: 12, memGibHours: 24, gpuHours: 6 },
      { renter: "bob", vmHours: 4, vcpuHours: 32, memGibHours: 64, gpuHours: 4 },
    ]);
    // Only the last hour: alice had stopped, bob's stretch (still open) counts up to `to`.
    expect(usage.report(new Date(clock.t - H), new Date(clock.t))).toEqual([{ renter: "bob", vmHours: 1, vcpuHours: 8, memGibHours: 16, gpuHours: 1 }]);
    expect(usageCsv("n1", new Date(t0), new Date(t0 + H), usage.report(new Date(t0), new Date(t0 + H)))).toBe(
      "node_id,renter,from,to,vm_hours,vcpu_hours,mem_gib_hours,gpu_hours\r\nn1,alice,2026-11-01T00:00:00.000Z,2026-11-01T01:00:00.000Z,1,4,8,2\r\n",
    );
  });

  it("a restart that took a changed GPU count closes the old stretch and opens one with the new", () => {
    const { usage, clock } = ledger();
    usage.running(vm("a", "alice", 0));
    clock.t += H;
    usage.running(vm("a", "alice", 4));
    clock.t += H;
    expect(usage.report(new Date(t0), new Date(clock.t))).toEqual([{ renter: "alice", vmHours: 2, vcpuHours: 8, memGibHours: 16, gpuHours: 4 }]);
  });

  it("at agent start closes the stretches of VMs no longer running, and opens those of VMs that run", () => {
    const { usage, clock } = ledger();
    usage.running(vm("a", "alice", 1));
    usage.running(vm("b", "bob", 0));
    clock.t += H;
    usage.sync([vm("b", "bob", 0), vm("c", null, 0)]);
    clock.t += H;
    const lines = usage.report(new Date(t0), new Date(clock.t));
    expect(lines.map((l) => [l.renter, l.vmHours])).toEqual([
      [null, 1],
      ["alice", 1],
      ["bob", 2],
    ]);
  });
});
