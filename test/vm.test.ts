import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { call, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { control, freePort, holdPort, httpStatus, listVms, processAlive, qemuPid, waitForVm } from "./helpers/vm.js";

// Real QEMU guests (KVM where it works, TCG otherwise): the demo image built by images/demo/build.sh.
const agents = new TestAgents();
let dir: string;
let agent: AgentProcess;

function vmDirs(): string[] {
  const d = join(dir, "data", "vms");
  return existsSync(d) ? readdirSync(d) : [];
}

async function addVm(body: unknown) {
  return call(`${agent.url}/common/vm/add`, { token: agent.adminToken, body });
}

beforeAll(async () => {
  dir = agents.dir();
  agent = await agents.start({ dir, extraArgs: ["--shutdown-timeout", "20", "--cpu-overcommit", "4"] });
});
afterAll(async () => {
  // Delete whatever a failed test left, so no QEMU outlives the suite.
  if (agent) {
    for (const vm of await listVms(agent).catch(() => [])) {
      await control(agent, { vm_id: vm.id, action: "delete" }).catch(() => undefined);
    }
  }
  await agents.cleanup();
});

describe("the demo VM through the host API", () => {
  let id: string;
  let httpPort: number;

  it("is created and running at once, ready soon, and serves HTTP through its forwarded port", async () => {
    httpPort = await freePort();
    const r = await addVm({
      nickname: "web-1",
      cpu_physical_core: "1",
      main_memory: "256M",
      disk_memory: "1G",
      custom_port: [`tcp,${httpPort}:80`],
      start_command: "rm -rf / --no-preserve-root",
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ message: "ok", id: expect.any(String) });
    id = r.body.id;
    const [vm] = await listVms(agent);
    expect(vm).toMatchObject({
      id,
      nickname: "web-1",
      cpu_physical_core: 1,
      cpu_virtual_core: 1,
      main_memory: "256M",
      disk_memory: "1G",
      start_command: "rm -rf / --no-preserve-root",
      status: "running",
      image_name: "batu-demo.qcow2",
      custom_port: [`tcp,${httpPort}:80`],
    });
    expect(vm.ssh_port).toBeGreaterThanOrEqual(20000);
    expect(vm.vnc_port).toBeGreaterThanOrEqual(5900);
    await waitForVm(agent, id, (v) => v.ready === true);
    expect(await httpStatus(httpPort)).toBe(200);
  });

  it("the system disk is a linked clone of the image and the data disk has the asked size", async () => {
    const { execFileSync } = await import("node:child_process");
    const info = JSON.parse(
      execFileSync("qemu-img", ["info", "-U", "--output=json", join(dir, "data", "vms", id, "vda.qcow2")], { encoding: "utf8" }),
    );
    expect(info["backing-filename"]).toMatch(/batu-demo\.qcow2$/);
    expect(info["actual-size"]).toBeLessThan(8 * 2 ** 20);
    const data = JSON.parse(
      execFileSync("qemu-img", ["info", "-U", "--output=json", join(dir, "data", "vms", id, "vdb.qcow2")], { encoding: "utf8" }),
    );
    expect(data["virtual-size"]).toBe(2 ** 30);
  });

  it("reports stats from QMP and /proc", async () => {
    const r = await call(`${agent.url}/common/vm/stats?vm_id=${id}`, { token: agent.adminToken });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ vm_id: id, status: "running", ready: true, cpu: { vcpus: 1 } });
    expect(r.body.uptime_sec).toBeGreaterThan(0);
    expect(r.body.cpu.time_ms).toBeGreaterThan(0);
    expect(r.body.memory.configured_bytes).toBe(256 * 2 ** 20);
    expect(r.body.memory.used_bytes).toBeGreaterThan(10 * 2 ** 20);
    expect(r.body.disk.read_bytes).toBeGreaterThan(0);
    const missing = await call(`${agent.url}/common/vm/stats?vm_id=nope`, { token: agent.adminToken });
    expect(missing.status).toBe(404);
    expect((await call(`${agent.url}/common/vm/stats`, { token: agent.adminToken })).body.message).toMatch(/vm_id/);
  });

  it("shuts down gracefully (the guest powers off on ACPI) and starts again", async () => {
    const pid = qemuPid(agent, id)!;
    const r = await control(agent, { vm_id: id, action: "shutdown" });
    expect(r).toEqual({ status: 200, body: { message: "ok" } });
    expect((await listVms(agent))[0]).toMatchObject({ status: "closed", ready: false });
    expect(processAlive(pid)).toBe(false);
    expect(await httpStatus(httpPort, 1000)).toBe(0);
    // An action the state forbids is a 409 that says why.
    expect(await control(agent, { vm_id: id, action: "shutdown" })).toEqual({ status: 409, body: { message: "vm is closed" } });

    expect((await control(agent, { vm_id: id, action: "start" })).status).toBe(200);
    expect((await listVms(agent))[0].status).toBe("running");
    await waitForVm(agent, id, (v) => v.ready);
    expect(await httpStatus(httpPort)).toBe(200);
    expect(await control(agent, { vm_id: id, action: "start" })).toEqual({ status: 409, body: { message: "vm is running" } });
  });

  it("resets and restarts: the guest comes back ready each time", async () => {
    expect((await control(agent, { vm_id: id, action: "reset" })).status).toBe(200);
    await waitForVm(agent, id, (v) => v.status === "running" && v.ready);
    const pidBefore = qemuPid(agent, id);
    expect((await control(agent, { vm_id: id, action: "restart" })).status).toBe(200);
    expect(qemuPid(agent, id)).not.toBe(pidBefore); // graceful restart: a new QEMU
    await waitForVm(agent, id, (v) => v.status === "running" && v.ready);
    expect(await httpStatus(httpPort)).toBe(200);
  });

  it("survives the agent being killed with SIGKILL: still running and listed correctly", async () => {
    const pid = qemuPid(agent, id)!;
    await agents.stop(agent, "kill");
    expect(processAlive(pid)).toBe(true);
    agent = await agents.restart(agent);
    const [vm] = await listVms(agent);
    expect(vm).toMatchObject({ id, status: "running", ready: true });
    expect(await httpStatus(httpPort)).toBe(200);
    // The adopted VM is driven as before.
    expect((await call(`${agent.url}/common/vm/stats?vm_id=${id}`, { token: agent.adminToken })).body.cpu.time_ms).toBeGreaterThan(0);
  });

  it("shows `closed` when its QEMU is killed behind the agent's back", async () => {
    const pid = qemuPid(agent, id)!;
    process.kill(pid, "SIGKILL");
    await waitForVm(agent, id, (v) => v.status === "closed", 10_000);
    expect((await listVms(agent))[0].ready).toBe(false);
  });

  it("is gone without a trace after delete: no process, disk, folder or port", async () => {
    expect((await control(agent, { vm_id: id, action: "start" })).status).toBe(200);
    const pid = qemuPid(agent, id)!;
    const [vm] = await listVms(agent);
    expect((await control(agent, { vm_id: id, action: "delete" })).status).toBe(200);
    expect(await listVms(agent)).toEqual([]);
    expect(processAlive(pid)).toBe(false);
    expect(vmDirs()).toEqual([]);
    // Its ports are free again: a new VM may take them.
    const again = await addVm({ cpu_physical_core: 1, main_memory: "256M", ssh_port: vm.ssh_port, vnc_port: vm.vnc_port, custom_port: [`tcp,${httpPort}:80`] });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect((await control(agent, { vm_id: again.body.id, action: "poweroff" })).status).toBe(200);
    expect((await control(agent, { vm_id: again.body.id, action: "delete" })).status).toBe(200);
    expect(vmDirs()).toEqual([]);
  });
});

describe("VM requests that are refused leave nothing behind", () => {
  async function expectRefused(body: unknown, status: number, message: RegExp) {
    const r = await addVm(body);
    expect(r.status, JSON.stringify(r.body)).toBe(status);
    expect(r.body.message).toMatch(message);
    expect(await listVms(agent)).toEqual([]);
    expect(vmDirs()).toEqual([]);
  }

  it("too much memory, or too many vCPUs", async () => {
    await expectRefused({ cpu_physical_core: 1, main_memory: "4096G" }, 409, /allocate mem failed/);
    await expectRefused({ cpu_physical_core: 256, main_memory: "256M" }, 409, /allocate cpu failed/);
  });

  it("a port taken on the host, or by another VM", async () => {
    const held = await holdPort();
    try {
      await expectRefused({ cpu_physical_core: 1, main_memory: "256M", ssh_port: held.port }, 409, new RegExp(`port conflict, exist ssh_port = ${held.port}`));
      await expectRefused({ cpu_physical_core: 1, main_memory: "256M", custom_port: [`tcp,${held.port}:80`] }, 409, /custom_port/);
    } finally {
      held.server.close();
    }
    const first = await addVm({ cpu_physical_core: 1, main_memory: "256M" });
    expect(first.status).toBe(200);
    const [vm] = await listVms(agent);
    const r = await addVm({ cpu_physical_core: 1, main_memory: "256M", vnc_port: vm.vnc_port });
    expect(r.status).toBe(409);
    expect(r.body.message).toMatch(`port conflict, exist vnc_port = ${vm.vnc_port}`);
    expect(await listVms(agent)).toHaveLength(1);
    expect((await control(agent, { vm_id: first.body.id, action: "delete" })).status).toBe(200);
  });

  it("an unknown image, a bad size, a bad port spec, an unknown field", async () => {
    await expectRefused({ cpu_physical_core: 1, main_memory: "256M", image_name: "nope.qcow2" }, 400, /^image_name: 'image_name' is not exist/);
    await expectRefused({ cpu_physical_core: 1, main_memory: "12X" }, 400, /^main_memory: not a size/);
    await expectRefused({ cpu_physical_core: 1, main_memory: "1G", custom_port: ["tcp,1-3:5-6"] }, 400, /custom_port/);
    await expectRefused({ cpu_physical_core: 1, main_memory: "1G", vnc_port: 80 }, 400, /vnc_port is invalid \(usage: \[5900, 65535\]\)/);
    await expectRefused({ cpu_physical_core: 1 }, 400, /^main_memory: is required/);
    await expectRefused({ cpu_physical_core: 1, main_memory: "1G", gpu: 1 }, 400, /^gpu: is not a known field/);
    await expectRefused({ data: "{not json" }, 400, /^data: is not JSON/);
  });

  it("invalid actions and command strings on /common/vm/control", async () => {
    expect(await control(agent, { vm_id: "x", action: "fly" })).toEqual({
      status: 400,
      body: { message: "action: must be one of start, shutdown, poweroff, restart, reset, delete" },
    });
    expect((await control(agent, { vm_id: "nope", action: "start" })).status).toBe(404);
    const text = await call(`${agent.url}/common/vm/control`, { token: agent.adminToken, rawBody: "reboot", contentType: "text/plain" });
    expect(text.status).toBe(400);
    expect(text.body.message).toMatch(/never runs a command/);
    const form = await call(`${agent.url}/common/vm/control`, {
      token: agent.adminToken,
      rawBody: `data=${encodeURIComponent(JSON.stringify({ command: "./reboot 1" }))}`,
      contentType: "application/x-www-form-urlencoded",
    });
    expect(form.status).toBe(400);
    expect(form.body.message).toMatch(/^command: is not accepted/);
  });
});

describe("seed 000's form field and concurrent creations", () => {
  it("accepts the original form field `data` holding JSON text", async () => {
    const r = await call(`${agent.url}/common/vm/add`, {
      token: agent.adminToken,
      rawBody: `data=${encodeURIComponent(JSON.stringify({ nickname: "form", cpu_physical_core: "1", cpu_virtual_core: "1", main_memory: "256", disk_memory: "1" }))}`,
      contentType: "application/x-www-form-urlencoded",
    });
    // main_memory "256" is 256 GB: more than this host has.
    expect(r.status).toBe(409);
    const ok = await call(`${agent.url}/common/vm/add`, {
      token: agent.adminToken,
      rawBody: `data=${encodeURIComponent(JSON.stringify({ nickname: "form", cpu_physical_core: "1", main_memory: "0.25", disk_memory: "1" }))}`,
      contentType: "application/x-www-form-urlencoded",
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect((await listVms(agent))[0]).toMatchObject({ nickname: "form", main_memory: "256M", disk_memory: "1G" });
    expect((await control(agent, { vm_id: ok.body.id, action: "delete" })).status).toBe(200);
  });

  it("creates two VMs at once with distinct ports, and boots the image's own bootloader (legacy BIOS)", async () => {
    const [a, b] = await Promise.all([
      addVm({ cpu_physical_core: 1, main_memory: "256M" }),
      addVm({ cpu_physical_core: 1, main_memory: "256M", image_name: "batu-demo-bios.qcow2" }),
    ]);
    expect(a!.status).toBe(200);
    expect(b!.status).toBe(200);
    const vms = await listVms(agent);
    const ports = vms.flatMap((v) => [v.ssh_port, v.vnc_port]);
    expect(new Set(ports).size).toBe(4);
    await waitForVm(agent, b!.body.id, (v) => v.ready, 90_000);
    for (const v of vms) expect((await control(agent, { vm_id: v.id, action: "delete" })).status).toBe(200);
    expect(vmDirs()).toEqual([]);
  });
});
