import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskKind, parseCpuinfo, parseMeminfo, parseOsRelease, readHostInfo } from "./host-info.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "batu-host-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("host file parsers", () => {
  it("parses os-release", () => {
    const osr = parseOsRelease(
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME=\'Debian\'\nVERSION_ID="12"\nID=debian\n# comment\nQUOTED="a \\"b\\""\n',
    );
    expect(osr).toEqual({
      PRETTY_NAME: "Debian GNU/Linux 12 (bookworm)",
      NAME: "Debian",
      VERSION_ID: "12",
      ID: "debian",
      QUOTED: 'a "b"',
    });
  });

  it("parses meminfo into bytes", () => {
    const m = parseMeminfo("MemTotal:       24684084 kB\nMemFree:        23740244 kB\nMemAvailable:   24036864 kB\nHugePages_Total:       4\n");
    expect(m.MemTotal).toBe(24684084 * 1024);
    expect(m.MemAvailable).toBe(24036864 * 1024);
    expect(m.HugePages_Total).toBe(4);
  });

  it("parses cpuinfo: model, sockets, cores per socket, clock", () => {
    const block = (id: number, phys: number): string =>
      `processor\t: ${id}\nmodel name\t: AMD EPYC 7543 32-Core Processor\ncpu MHz\t\t: 2096.034\nphysical id\t: ${phys}\ncpu cores\t: 32\n\n`;
    expect(parseCpuinfo(block(0, 0) + block(1, 0) + block(2, 1))).toEqual({
      model: "AMD EPYC 7543 32-Core Processor",
      sockets: 2,
      coresPerSocket: 32,
      mhz: 2096.034,
    });
    expect(parseCpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\n")).toEqual({});
  });
});

describe("readHostInfo", () => {
  it("reads this machine", async () => {
    const info = await readHostInfo(dir);
    expect(info.hostname.length).toBeGreaterThan(0);
    expect(info.kernel.length).toBeGreaterThan(0);
    expect(info.os.length).toBeGreaterThan(0);
    expect(info.cpu.threads).toBe(cpus().length);
    expect(info.cpu.model.length).toBeGreaterThan(0);
    expect(info.memory.totalBytes).toBeGreaterThan(0);
    expect(info.memory.availableBytes).toBeGreaterThan(0);
    expect(info.memory.availableBytes).toBeLessThanOrEqual(info.memory.totalBytes);
    expect(info.disk.path).toBe(dir);
    expect(info.disk.totalBytes).toBeGreaterThan(0);
    expect(info.disk.freeBytes).toBeLessThanOrEqual(info.disk.totalBytes);
    expect(info.uptimeSec).toBeGreaterThan(0);
    expect(info.loadAverage).toHaveLength(3);
  });

  it("uses the given sources", async () => {
    await writeFile(join(dir, "os-release"), 'NAME="Batu OS"\n');
    await writeFile(join(dir, "meminfo"), "MemTotal: 2048 kB\nMemFree: 1024 kB\n");
    await writeFile(join(dir, "cpuinfo"), "model name : Test CPU\nphysical id : 0\ncpu cores : 4\n");
    const info = await readHostInfo(dir, {
      osReleasePath: join(dir, "os-release"),
      meminfoPath: join(dir, "meminfo"),
      cpuinfoPath: join(dir, "cpuinfo"),
    });
    expect(info.os).toBe("Batu OS");
    expect(info.memory).toEqual({ totalBytes: 2048 * 1024, availableBytes: 1024 * 1024 });
    expect(info.cpu).toMatchObject({ model: "Test CPU", sockets: 1, coresPerSocket: 4 });
  });

  it("fails for a data dir that does not exist", async () => {
    await expect(readHostInfo(join(dir, "missing"))).rejects.toThrow(/ENOENT/);
  });

  it("tells an SSD from an HDD by the device's rotational flag, a partition by its disk's", async () => {
    const sys = await mkdtemp(join(tmpdir(), "batu-sys-"));
    const flag = async (dir: string, v: string) => {
      await mkdir(join(sys, dir, "queue"), { recursive: true });
      await writeFile(join(sys, dir, "queue", "rotational"), `${v}\n`);
    };
    await mkdir(join(sys, "dev", "block"), { recursive: true });
    await flag("block/vda", "0");
    await mkdir(join(sys, "block", "vda", "vda1"));
    await symlink(join(sys, "block", "vda"), join(sys, "dev", "block", "254:0"));
    await symlink(join(sys, "block", "vda", "vda1"), join(sys, "dev", "block", "254:1"));
    await flag("block/sdb", "1");
    await symlink(join(sys, "block", "sdb"), join(sys, "dev", "block", "8:16"));
    expect(await diskKind((254 << 8) | 0, sys)).toBe("SSD");
    expect(await diskKind((254 << 8) | 1, sys)).toBe("SSD");
    expect(await diskKind((8 << 8) | 16, sys)).toBe("HDD");
    expect(await diskKind((7 << 8) | 3, sys)).toBeNull();
  });
});
