import { describe, expect, it } from "vitest";
import type { VmStats } from "../api/host-vm.js";
import type { VmRecord } from "../vm/repo.js";
import { readVmFigures } from "./vm-figures.js";

const vm = (id: string, status: string) => ({ id, status }) as unknown as VmRecord;
const figures = (id: string): VmStats => ({
  vm_id: id,
  status: "running",
  ready: true,
  uptime_sec: 1,
  cpu: { vcpus: 1, time_ms: 10, usage_percent: null },
  memory: { configured_bytes: 1, used_bytes: 1 },
  disk: { read_bytes: 1, written_bytes: 1 },
  network: { rx_bytes: null, tx_bytes: null },
});

describe("readVmFigures", () => {
  it("reads the running VMs only, and gives up on one that does not answer within the bound", async () => {
    const asked: string[] = [];
    const read = await readVmFigures(
      {
        list: () => [vm("a", "running"), vm("stuck", "running"), vm("failing", "running"), vm("off", "closed")],
        isLive: (id) => id !== "off",
        counters: (v) => {
          asked.push(v.id);
          if (v.id === "stuck") return new Promise<VmStats>(() => undefined);
          if (v.id === "failing") return Promise.reject(new Error("QMP closed"));
          return Promise.resolve(figures(v.id));
        },
      },
      50,
    );
    expect(asked.sort()).toEqual(["a", "failing", "stuck"]);
    expect(read.records.map((r) => r.id)).toEqual(["a", "stuck", "failing", "off"]);
    expect(read.figures.map((f) => f.vm_id)).toEqual(["a"]);
    expect(read.unread).toBe(2);
  });
});
