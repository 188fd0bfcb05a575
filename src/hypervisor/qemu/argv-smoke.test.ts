import { copyFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { connect as tcpConnect, createServer } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { exec } from "../../lib/exec.js";
import { buildQemuArgv } from "./argv.js";
import { startQemu, waitForExit } from "./process.js";
import { QmpClient } from "./qmp/client.js";
import { DEBIAN_OVMF, type QemuSpec } from "./spec.js";
import { makeTempDir, minimalSpec, qemuAvailable, QemuTestJanitor } from "./testing.js";
import { QemuHypervisor } from "./index.js";
import { createLogger } from "../../lib/logger.js";

/** A TCP port nobody listens on right now, at or above `min`. */
async function freePort(min = 0): Promise<number> {
  for (let port = min === 0 ? 0 : min + Math.floor(Math.random() * 2000); ; port++) {
    const got = await new Promise<number | null>((resolve) => {
      const srv = createServer();
      srv.once("error", () => resolve(null));
      srv.listen(port, "127.0.0.1", () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : null));
      });
    });
    if (got !== null) return got;
  }
}

/** The security types a VNC server offers after the RFB 3.8 handshake (2 = VNC password). */
function vncSecurityTypes(port: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length === 12 && buf.toString().startsWith("RFB ")) s.write("RFB 003.008\n");
      if (buf.length > 12 && buf.length >= 13 + buf[12]!) {
        s.destroy();
        resolve([...buf.subarray(13, 13 + buf[12]!)]);
      }
    });
    s.on("error", reject);
  });
}

describe.runIf(qemuAvailable())("QEMU accepts the argv buildQemuArgv writes", () => {
  const janitor = new QemuTestJanitor();
  afterEach(() => janitor.cleanup());

  async function boot(spec: QemuSpec): Promise<{ pid: number; qmp: QmpClient }> {
    const { pid } = await startQemu([...buildQemuArgv(spec), "-S"], spec.runDir);
    janitor.vm(pid, spec.runDir);
    const qmp = await QmpClient.connect(join(spec.runDir, "qmp.sock"));
    return { pid, qmp };
  }

  async function quit(qmp: QmpClient, pid: number): Promise<void> {
    await qmp.execute("quit");
    await qmp.close();
    expect(await waitForExit(pid, 5_000)).toBe(true);
  }

  it("bios boot disk + data disk + user forwards + VNC password + fw_cfg", async () => {
    const dir = janitor.dir(await makeTempDir());
    await exec("qemu-img", ["create", "-f", "qcow2", join(dir, "vda.qcow2"), "64M"]);
    await writeFile(join(dir, "vdb.raw"), Buffer.alloc(1024 * 1024));
    await writeFile(join(dir, "vnc.secret"), "s3cret");
    await writeFile(join(dir, "password"), "guest-password");
    const [sshPort, udpPort, vncPort] = [await freePort(), await freePort(), await freePort(5900)];
    const spec = minimalSpec(dir, {
      name: "smoke",
      cpuModel: "max",
      disks: [
        { id: "vda", path: join(dir, "vda.qcow2"), format: "qcow2" },
        { id: "vdb", path: join(dir, "vdb.raw"), format: "raw" },
      ],
      nics: [
        {
          kind: "user",
          id: "net0",
          mac: "52:54:00:12:34:56",
          hostForwards: [
            { proto: "tcp", hostAddr: "127.0.0.1", hostPort: sshPort, guestPort: 22 },
            { proto: "udp", hostAddr: "127.0.0.1", hostPort: udpPort, guestPort: 53 },
          ],
        },
      ],
      vnc: { listenAddr: "127.0.0.1", port: vncPort, passwordFile: join(dir, "vnc.secret") },
      fwCfg: [{ name: "opt/batu/password", file: join(dir, "password") }],
    });
    const { pid, qmp } = await boot(spec);
    expect(await qmp.execute("query-status")).toMatchObject({ status: "prelaunch" });
    expect(await qmp.execute("query-name")).toEqual({ name: "smoke" });
    expect(await qmp.execute("query-vnc")).toMatchObject({ enabled: true, auth: "vnc", service: String(vncPort) });
    expect(await vncSecurityTypes(vncPort)).toEqual([2]);
    const blocks = await qmp.execute<Array<{ qdev: string }>>("query-blockstats");
    expect(blocks.map((b) => b.qdev)).toEqual(["/machine/peripheral/vda/virtio-backend", "/machine/peripheral/vdb/virtio-backend"]);
    const net = await qmp.execute<string>("human-monitor-command", { "command-line": "info network" });
    expect(net).toContain("net0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56");
    await quit(qmp, pid);
  });

  it.runIf(existsSync(DEBIAN_OVMF.codePath))("uefi on q35 with a hotplug port that takes a disk", async () => {
    const dir = janitor.dir(await makeTempDir());
    await copyFile(DEBIAN_OVMF.varsTemplatePath, join(dir, "OVMF_VARS.fd"));
    await exec("qemu-img", ["create", "-f", "qcow2", join(dir, "vdb.qcow2"), "16M"]);
    const spec = minimalSpec(dir, {
      machine: "q35",
      cpu: { sockets: 1, cores: 2, threads: 1 },
      firmware: { kind: "uefi", codePath: DEBIAN_OVMF.codePath, varsPath: join(dir, "OVMF_VARS.fd") },
      hotplugPorts: 2,
    });
    const { pid, qmp } = await boot(spec);
    expect(await qmp.execute("query-status")).toMatchObject({ status: "prelaunch" });
    expect(await qmp.execute<unknown[]>("query-cpus-fast")).toHaveLength(2);
    // Running (a machine not yet started takes devices anywhere): the driver finds a free spare port
    // for each disk, as q35's root bus refuses hot-plugging, until none is left.
    await qmp.execute("cont");
    const hv = new QemuHypervisor({ logger: createLogger({ level: "silent" }) });
    await exec("qemu-img", ["create", "-f", "qcow2", join(dir, "vdc.qcow2"), "16M"]);
    await exec("qemu-img", ["create", "-f", "qcow2", join(dir, "vdd.qcow2"), "16M"]);
    await hv.attachDisk(qmp, { id: "vdb", path: join(dir, "vdb.qcow2"), format: "qcow2" });
    await hv.attachDisk(qmp, { id: "vdc", path: join(dir, "vdc.qcow2"), format: "qcow2" });
    await expect(hv.attachDisk(qmp, { id: "vdd", path: join(dir, "vdd.qcow2"), format: "qcow2" })).rejects.toMatchObject({ code: "no_hotplug_port" });
    const blocks = await qmp.execute<Array<{ qdev: string; "node-name"?: string }>>("query-blockstats");
    expect(blocks.map((b) => b.qdev)).toEqual(expect.arrayContaining(["/machine/peripheral/vdb/virtio-backend", "/machine/peripheral/vdc/virtio-backend"]));
    expect(blocks.map((b) => b.qdev)).not.toContain("/machine/peripheral/vdd/virtio-backend");
    // One cap shared by the VM's disks (a throttle group), read back as QEMU holds it.
    const throttle = { iops: 250, bytesPerSec: 10_000_000, group: "batu-vm" };
    await hv.throttleDisk(qmp, "vdb", throttle);
    await hv.throttleDisk(qmp, "vdc", throttle);
    expect(await hv.diskThrottles(qmp)).toEqual(expect.arrayContaining([{ id: "vdb", throttle }, { id: "vdc", throttle }]));
    await hv.throttleDisk(qmp, "vdc", null);
    expect((await hv.diskThrottles(qmp)).find((d) => d.id === "vdc")).toEqual({ id: "vdc", throttle: null });
    await quit(qmp, pid);
  });
});
