import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { exec } from "../../lib/exec.js";
import { buildQemuArgv } from "./argv.js";
import { startQemu } from "./process.js";
import { QmpClient } from "./qmp/client.js";
import { collectQemuStats, parseBlockStats, parseProcStat, parseVmRssBytes } from "./stats.js";
import { makeTempDir, minimalSpec, qemuAvailable, QemuTestJanitor } from "./testing.js";

const janitor = new QemuTestJanitor();
afterEach(() => janitor.cleanup());

describe("stats parsers", () => {
  it("parses utime+stime and starttime past a comm with spaces and slashes", () => {
    // Fields 1..22 of a vCPU thread's stat ("CPU 0/TCG" with debug-threads=on).
    const line = "4242 (CPU 0/TCG) R 1 4242 4242 0 -1 4194368 10 0 0 0 150 25 0 0 20 0 3 0 98765 1000 200";
    expect(parseProcStat(line)).toEqual({ cpuTicks: 175, startTicks: 98765 });
    expect(() => parseProcStat("1 (x) S 1")).toThrow();
  });

  it("reads VmRSS in bytes", () => {
    expect(parseVmRssBytes("Name:\tqemu\nVmHWM:\t  300 kB\nVmRSS:\t  204800 kB\nThreads:\t5\n")).toBe(204800 * 1024);
  });

  it("keys block stats by the virtio-blk device id and skips board devices", () => {
    const stats = (rd: number, wr: number) => ({ rd_bytes: rd, wr_bytes: wr, rd_operations: 1, wr_operations: 2 });
    expect(
      parseBlockStats([
        { device: "", qdev: "/machine/system.flash0", stats: stats(1, 1) },
        { device: "", qdev: "/machine/peripheral/vda/virtio-backend", stats: stats(512, 0) },
        { device: "", qdev: "/machine/peripheral/vdb/virtio-backend", stats: stats(0, 4096) },
      ]),
    ).toEqual([
      { id: "vda", rdBytes: 512, wrBytes: 0, rdOps: 1, wrOps: 2 },
      { id: "vdb", rdBytes: 0, wrBytes: 4096, rdOps: 1, wrOps: 2 },
    ]);
  });
});

describe.runIf(qemuAvailable())("collectQemuStats against real QEMU", () => {
  it("reports vCPU time, RSS, uptime, disk reads, and honest NIC counters", async () => {
    const dir = janitor.dir(await makeTempDir());
    await exec("qemu-img", ["create", "-f", "qcow2", join(dir, "vda.qcow2"), "16M"]);
    const spec = minimalSpec(dir, {
      disks: [{ id: "vda", path: join(dir, "vda.qcow2"), format: "qcow2" }],
      nics: [{ kind: "user", id: "net0", mac: "52:54:00:00:00:01", hostForwards: [] }],
    });
    const { pid } = await startQemu(buildQemuArgv(spec), dir);
    janitor.vm(pid, dir);
    const qmp = await QmpClient.connect(join(dir, "qmp.sock"));
    try {
      await sleep(1_500); // SeaBIOS runs and reads the (blank) boot disk
      const sysClassNet = join(dir, "sys-class-net");
      await mkdir(join(sysClassNet, "tap-x", "statistics"), { recursive: true });
      await writeFile(join(sysClassNet, "tap-x", "statistics", "tx_bytes"), "1000\n");
      await writeFile(join(sysClassNet, "tap-x", "statistics", "rx_bytes"), "2000\n");
      const s = await collectQemuStats(
        qmp,
        pid,
        [
          { id: "net0", kind: "user" },
          { id: "net9", kind: "tap", ifname: "tap-x" },
          { id: "net8", kind: "tap", ifname: "tap-gone" },
        ],
        { sysClassNet },
      );
      expect(s.vcpuCount).toBe(1);
      expect(s.vcpuTimeMs).toBeGreaterThan(0);
      expect(s.processCpuTimeMs).toBeGreaterThanOrEqual(s.vcpuTimeMs);
      expect(s.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
      expect(s.uptimeMs).toBeGreaterThan(500);
      expect(s.uptimeMs).toBeLessThan(60_000);
      expect(s.disks).toHaveLength(1);
      expect(s.disks[0]).toMatchObject({ id: "vda", wrBytes: 0 });
      expect(s.disks[0]!.rdBytes).toBeGreaterThan(0);
      expect(s.nics).toEqual([
        { id: "net0", rxBytes: null, txBytes: null },
        { id: "net9", rxBytes: 1000, txBytes: 2000 },
        { id: "net8", rxBytes: null, txBytes: null },
      ]);
    } finally {
      await qmp.close();
    }
  });
});
