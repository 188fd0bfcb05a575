import { afterEach, describe, expect, it } from "vitest";
import { createServer } from "node:net";
import { HypervisorError } from "../driver.js";
import { QemuHypervisor } from "./index.js";
import { readPidFile, waitForExit } from "./process.js";
import type { QmpClient } from "./qmp/client.js";
import type { QmpEvent } from "./qmp/errors.js";
import { makeTempDir, minimalSpec, qemuAvailable, QemuTestJanitor } from "./testing.js";

describe.runIf(qemuAvailable())("QemuHypervisor against real QEMU", () => {
  const hv = new QemuHypervisor();
  const janitor = new QemuTestJanitor();
  let qmp: QmpClient | undefined;
  afterEach(async () => {
    await qmp?.close();
    qmp = undefined;
    await janitor.cleanup();
  });

  it("starts paused, refuses a second start, and drives the VM through its life", async () => {
    const dir = janitor.dir(await makeTempDir());
    const spec = minimalSpec(dir);
    const { pid } = await hv.start(spec, { paused: true });
    janitor.vm(pid, dir);
    expect(await hv.isAlive(pid, dir)).toBe(true);
    expect(await hv.findRunning(dir)).toBe(pid);
    await expect(hv.start(spec)).rejects.toBeInstanceOf(HypervisorError);
    await expect(hv.start(spec)).rejects.toMatchObject({ code: "already_running" });

    qmp = await hv.connect(dir);
    const events: string[] = [];
    qmp.on("event", (e: QmpEvent) => events.push(e.event));
    expect(await qmp.execute("query-status")).toMatchObject({ status: "prelaunch" });
    await hv.resume(qmp);
    expect(await qmp.execute("query-status")).toMatchObject({ status: "running" });
    await hv.pause(qmp);
    expect(await qmp.execute("query-status")).toMatchObject({ status: "paused" });
    await hv.reset(qmp);
    await hv.resume(qmp);
    await hv.powerdown(qmp); // no ACPI-aware guest here: accepted, ignored
    const stats = await hv.stats(qmp, pid);
    expect(stats.vcpuCount).toBe(1);

    await hv.quit(qmp, pid, dir);
    expect(await hv.isAlive(pid, dir)).toBe(false);
    expect(await readPidFile(dir)).toBeNull();
    expect(events).toEqual(expect.arrayContaining(["RESUME", "STOP", "RESET", "POWERDOWN", "SHUTDOWN"]));
  });

  it("reads a VM's host forwards back, as updateHostForwards leaves them", async () => {
    const dir = janitor.dir(await makeTempDir());
    const [a, b] = [await freePort(), await freePort()];
    const fwd = (hostPort: number, guestPort: number) => ({ proto: "tcp" as const, hostAddr: "127.0.0.1", hostPort, guestPort });
    const spec = minimalSpec(dir, { nics: [{ kind: "user", id: "net0", mac: "52:54:00:12:34:56", hostForwards: [fwd(a, 80)] }] });
    const { pid } = await hv.start(spec, { paused: true });
    janitor.vm(pid, dir);
    qmp = await hv.connect(dir);
    expect(await hv.hostForwards(qmp, "net0")).toEqual([fwd(a, 80)]);
    await hv.updateHostForwards(qmp, "net0", { remove: [fwd(a, 80)], add: [fwd(b, 22)] });
    expect(await hv.hostForwards(qmp, "net0")).toEqual([fwd(b, 22)]);
    expect(await hv.hostForwards(qmp, "net1")).toEqual([]);
    await hv.quit(qmp, pid, dir);
  });

  it("kill ends a VM whose QMP is not used, and leaves a pid that is not runDir's QEMU alone", async () => {
    const dir = janitor.dir(await makeTempDir());
    const { pid } = await hv.start(minimalSpec(dir), { paused: true });
    janitor.vm(pid, dir);
    await hv.kill(process.pid, dir); // our own pid is not this runDir's QEMU: nothing happens
    await hv.kill(pid, `${dir}-other`);
    expect(await hv.isAlive(pid, dir)).toBe(true);
    await hv.kill(pid, dir, { timeoutMs: 3_000 });
    expect(await waitForExit(pid, 100)).toBe(true);
    expect(await hv.findRunning(dir)).toBeNull();
  });
});

/** A free TCP port on loopback, found by binding port 0. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
