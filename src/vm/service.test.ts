import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { dataFilesDir, quarantineDir, vmDir } from "../storage/volumes.js";
import { createDisk } from "../storage/qemu-img.js";
import { mkdir, writeFile } from "node:fs/promises";
import { VmConflictError, VmNotFoundError, VmResourceError } from "./errors.js";
import type { VmRecord } from "./repo.js";
import type { VmChange } from "./runtime.js";
import { testCreateRequest, testVms, type TestVms } from "./testing.js";

const request = testCreateRequest;

/** Resolves with the VM once `pred` holds for its record (polled: the runtime writes it asynchronously). */
async function until(vms: TestVms, id: string, pred: (vm: VmRecord | undefined) => boolean, what: string): Promise<VmRecord | undefined> {
  for (let i = 0; i < 200; i++) {
    const vm = vms.repo.get(id);
    if (pred(vm)) return vm;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${id} to be ${what}: ${JSON.stringify(vms.repo.get(id)?.status)}`);
}

const portsOf = (vms: TestVms, id: string) => vms.repo.ports(id).map((p) => `${p.kind}:${p.proto}/${p.port}`).sort();

let vms: TestVms;
beforeEach(async () => {
  vms = await testVms({ shutdownTimeoutMs: 300 });
});
afterEach(async () => {
  await vms.close();
});

describe("VmService.create", () => {
  it("records, provisions and boots a VM; its ports are held in memory and in the store; it becomes ready", async () => {
    const changes: VmChange[] = [];
    vms.queries.onChange((c) => changes.push(c));
    const vm = await vms.service.create(request("a1", { sshPort: 2222, customPorts: [{ proto: "udp", hostPort: 7000, guestPort: 70 }] }), { wait: true });
    expect(vm.status).toBe("running");
    expect(vm.spec.loginUser).toBe("tester");
    expect(vm.systemDiskBytes).toBe(8 * 2 ** 20);
    expect(existsSync(join(vmDir(vms.dataDir, "a1"), "vda.qcow2"))).toBe(true);
    expect(portsOf(vms, "a1")).toEqual(["custom:udp/7000", "ssh:tcp/2222", `vnc:tcp/${vm.spec.ports.vnc}`].sort());
    expect(vms.hypervisor.started).toHaveLength(1);
    await until(vms, "a1", (v) => v?.ready === true, "ready");
    expect(changes.map((c) => `${c.status}${c.ready ? "+ready" : ""}`)).toEqual(["creating", "running", "running+ready"]);
  });

  it("refuses what does not fit, a taken port (naming the field) and a bad image, leaving nothing behind", async () => {
    await expect(vms.service.create(request("big", { cores: 8, vcpus: 8 }), { wait: true })).rejects.toMatchObject({ field: "cpu" });
    await expect(vms.service.create(request("fat", { memoryBytes: 8 * 2 ** 30 }), { wait: true })).rejects.toBeInstanceOf(VmResourceError);
    await vms.service.create(request("a1", { sshPort: 2222 }), { wait: true });
    await expect(vms.service.create(request("a2", { sshPort: 2222 }), { wait: true })).rejects.toThrow("port conflict, exist ssh_port = 2222");
    await expect(vms.service.create(request("a3", { imageName: "nope.qcow2" }), { wait: true })).rejects.toMatchObject({ field: "image_name" });
    await expect(vms.service.create(request("a1"), { wait: true })).rejects.toMatchObject({ field: "task_id" });
    expect(vms.repo.list().map((v) => v.id)).toEqual(["a1"]);
    expect(vms.repo.ports().every((p) => p.vmId === "a1")).toBe(true);
    // The refused VM's ports went back: another VM gets 2223 and the VNC pool is not short of one.
    await vms.service.create(request("a4", { sshPort: 2223 }), { wait: true });
  });

  it("two creations of one id at once: one wins, the other is refused, and the winner keeps its ports", async () => {
    const results = await Promise.allSettled([
      vms.service.create(request("same", { sshPort: 2222 }), { wait: false }),
      vms.service.create(request("same", { sshPort: 2223 }), { wait: false }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ field: "task_id", message: "task id already existed" });
    await until(vms, "same", (v) => v?.status === "running", "running");
    expect(portsOf(vms, "same")).toContain("ssh:tcp/2222");
    await expect(vms.service.create(request("other", { sshPort: 2222 }), { wait: true })).rejects.toThrow("port conflict, exist ssh_port = 2222");
  });

  it("a task id is unique among its owner's tasks only: another owner choosing it gets a VM of its own, and no hint", async () => {
    await vms.service.create(request("shared-id-0123456789", { owner: "alice" }), { wait: true });
    const bobs = await vms.service.create(request("shared-id-0123456789", { owner: "bob" }), { wait: true });
    expect(bobs).toMatchObject({ taskId: "shared-id-0123456789", owner: "bob", status: "running" });
    expect(bobs.id).not.toBe("shared-id-0123456789");
    // Each owner finds its own by the task id; nobody else's.
    expect(vms.queries.getFor("alice", "shared-id-0123456789").id).toBe("shared-id-0123456789");
    expect(vms.queries.getFor("bob", "shared-id-0123456789").id).toBe(bobs.id);
    expect(() => vms.queries.getFor("carol", "shared-id-0123456789")).toThrow(VmNotFoundError);
    expect(() => vms.queries.getFor("bob", bobs.id)).toThrow(VmNotFoundError);
    // Its own id twice is refused, to its owner only.
    await expect(vms.service.create(request("shared-id-0123456789", { owner: "bob" }), { wait: true })).rejects.toMatchObject({ field: "task_id" });
    expect(vms.queries.summariesFor("bob").map((v) => v.taskId)).toEqual(["shared-id-0123456789"]);
    const op = vms.service.begin(bobs.id, "poweroff");
    expect(op).toMatchObject({ vmId: bobs.id, taskId: "shared-id-0123456789" });
  });

  it("a raw data file boots as raw, ever after: its format is read once, at creation", async () => {
    await mkdir(dataFilesDir(vms.dataDir), { recursive: true });
    await createDisk(join(dataFilesDir(vms.dataDir), "scratch.img"), 2 ** 20, "raw");
    await vms.service.create(request("r1", { dataFileName: "scratch.img" }), { wait: true });
    expect(vms.repo.get("r1")?.spec.dataFileFormat).toBe("raw");
    expect(vms.hypervisor.started.at(-1)?.disks.map((d) => `${d.id}:${d.format}`)).toEqual(["vda:qcow2", "vdb:raw"]);
    await vms.service.act("r1", "poweroff");
    await vms.service.act("r1", "start");
    expect(vms.hypervisor.started.at(-1)?.disks.map((d) => d.format)).toEqual(["qcow2", "raw"]);
  });

  it("its folder and disks are the owner's alone, whatever the umask", async () => {
    const old = process.umask(0o022);
    try {
      await vms.service.create(request("m1", { dataDiskBytes: 2 ** 20 }), { wait: true });
    } finally {
      process.umask(old);
    }
    const mode = (p: string) => statSync(p).mode & 0o777;
    expect(mode(vmDir(vms.dataDir, "m1"))).toBe(0o700);
    expect(mode(join(vmDir(vms.dataDir, "m1"), "vda.qcow2"))).toBe(0o600);
    expect(mode(join(vmDir(vms.dataDir, "m1"), "vdb.qcow2"))).toBe(0o600);
    expect(mode(join(vms.dataDir, "batu.db"))).toBe(0o600);
  });

  it("promises disk within the host's size: thin data disks cannot each be promised all of it", async () => {
    await vms.service.create(request("d1", { dataDiskBytes: 60 * 2 ** 30 }), { wait: true });
    await expect(vms.service.create(request("d2", { dataDiskBytes: 60 * 2 ** 30 }), { wait: true })).rejects.toMatchObject({ field: "disk" });
    // Shut off, d1 keeps its disk and its promise; started again, it is not asked for its disk twice.
    await vms.service.act("d1", "poweroff");
    await expect(vms.service.create(request("d3", { dataDiskBytes: 60 * 2 ** 30 }), { wait: true })).rejects.toThrow(/allocate disk failed/);
    await vms.service.act("d1", "start");
    await vms.service.act("d1", "delete");
    await vms.service.create(request("d4", { dataDiskBytes: 60 * 2 ** 30 }), { wait: true });
  });

  it("waited for, a failed boot leaves nothing: no record, no ports, no disks", async () => {
    vms.hypervisor.failNextStart = new Error("qemu: could not start");
    await expect(vms.service.create(request("f1", { sshPort: 2222 }), { wait: true })).rejects.toThrow("could not start");
    expect(vms.repo.get("f1")).toBeUndefined();
    expect(vms.repo.ports("f1")).toEqual([]);
    expect(existsSync(vmDir(vms.dataDir, "f1"))).toBe(false);
    await vms.service.create(request("f2", { sshPort: 2222 }), { wait: true });
  });

  it("answered at once, a failed boot shows as `create error` with its reason; everything but the record is released", async () => {
    vms.hypervisor.failNextStart = new Error("qemu: could not start");
    const vm = await vms.service.create(request("f1", { sshPort: 2222 }), { wait: false });
    expect(vm.status).toBe("creating");
    const failed = await until(vms, "f1", (v) => v?.status === "create error", "create error");
    expect(failed?.lastError).toContain("could not start");
    expect(failed?.systemDiskBytes).toBeNull();
    expect(vms.repo.ports("f1")).toEqual([]);
    expect(existsSync(vmDir(vms.dataDir, "f1"))).toBe(false);
    expect(vms.queries.operation(vm.operationId)).toMatchObject({ state: "failed", taskId: "f1" });
    await expect(vms.service.act("f1", "start")).rejects.toThrow("delete it and create it again");
    await vms.service.create(request("f2", { sshPort: 2222 }), { wait: true });
    await vms.service.act("f1", "delete");
    expect(vms.repo.get("f1")).toBeUndefined();
  });
});

describe("VmService actions", () => {
  beforeEach(async () => {
    await vms.service.create(request("a1", { sshPort: 2222 }), { wait: true });
  });

  it("shutdown: the guest powers off on ACPI; start boots it again; a second start is refused", async () => {
    await vms.service.act("a1", "shutdown");
    expect(vms.repo.get("a1")).toMatchObject({ status: "closed", pid: null, ready: false });
    expect(vms.hypervisor.running()).toEqual([]);
    await vms.service.act("a1", "start");
    expect(vms.repo.get("a1")?.status).toBe("running");
    await expect(vms.service.act("a1", "start")).rejects.toThrow(VmConflictError);
    expect(vms.hypervisor.started).toHaveLength(2);
  });

  it("shutdown of a guest that ignores ACPI powers it off after the timeout, and says so in its log", async () => {
    vms.hypervisor.guestsHonourAcpi = false;
    await vms.service.act("a1", "shutdown");
    expect(vms.repo.get("a1")?.status).toBe("closed");
    expect(vms.repo.logLines("a1", { from: "tail", count: 5 }).join("\n")).toContain("did not power off in time");
  });

  it("restart of a guest still booting (no ACPI yet) resets it at once rather than waiting out the shutdown bound", async () => {
    await until(vms, "a1", (v) => v?.ready === true, "ready");
    vms.hypervisor.guestsHonourAcpi = false;
    vms.hypervisor.guestsBecomeReady = false;
    await vms.service.create(request("early"), { wait: true });
    const t0 = Date.now();
    await vms.service.act("early", "restart");
    expect(Date.now() - t0).toBeLessThan(300); // the shutdown bound here: the restart did not wait it out
    expect(vms.repo.get("early")).toMatchObject({ status: "running", ready: false });
    expect(vms.repo.logLines("early", { from: "tail", count: 3 }).join("\n")).toContain("reset instead");
    // Once up, a restart is graceful again: ACPI first (this guest ignores it, so the bound is waited).
    const t1 = Date.now();
    await vms.service.act("a1", "restart");
    expect(Date.now() - t1).toBeGreaterThanOrEqual(300);
    expect(vms.repo.get("a1")?.status).toBe("running");
  });

  it("reset: not ready, then ready again once the guest is back", async () => {
    await until(vms, "a1", (v) => v?.ready === true, "ready");
    await vms.service.act("a1", "reset");
    expect(vms.repo.get("a1")).toMatchObject({ status: "running", ready: false });
    await until(vms, "a1", (v) => v?.ready === true, "ready again");
  });

  it("begin answers at once with an operation and refuses a second action while the first runs", async () => {
    const op = vms.service.begin("a1", "restart");
    expect(() => vms.service.begin("a1", "poweroff")).toThrow(VmConflictError);
    await until(vms, "a1", () => vms.queries.operation(op.id)?.state !== "running", "restarted");
    expect(vms.queries.operation(op.id)).toMatchObject({ state: "done", action: "restart" });
    expect(vms.repo.get("a1")?.status).toBe("running");
  });

  it("a QEMU that ends by itself leaves the VM closed, with no live handle", async () => {
    await vms.hypervisor.crash(vmDir(vms.dataDir, "a1"));
    await until(vms, "a1", (v) => v?.status === "closed", "closed");
    await vms.service.exclusive("a1", async (_vm, live) => expect(live).toBeUndefined());
  });

  it("delete stops the VM and frees its disks and ports", async () => {
    await vms.service.act("a1", "delete");
    expect(vms.repo.get("a1")).toBeUndefined();
    expect(vms.repo.ports()).toEqual([]);
    expect(existsSync(vmDir(vms.dataDir, "a1"))).toBe(false);
    expect(vms.hypervisor.running()).toEqual([]);
    await expect(vms.service.act("a1", "start")).rejects.toThrow(VmNotFoundError);
  });

  it("start counts what the other VMs hold", async () => {
    await vms.service.act("a1", "poweroff");
    await vms.service.create(request("a2", { cores: 4, vcpus: 4 }), { wait: true });
    await expect(vms.service.act("a1", "start")).rejects.toMatchObject({ field: "cpu" });
    expect(vms.repo.get("a1")?.status).toBe("closed");
  });
});

describe("VmService.modify and exclusive", () => {
  beforeEach(async () => {
    await vms.service.create(request("a1", { sshPort: 2222, vncPort: 5901 }), { wait: true });
  });

  it("moves a running VM's forwards live, releases the old port and records the new ones", async () => {
    expect(await vms.service.modify("a1", { sshPort: 2230, customPorts: [{ proto: "tcp", hostPort: 8080, guestPort: 80 }] })).toEqual({ nextBoot: false });
    expect(vms.hypervisor.forwardChanges).toEqual([
      {
        nicId: "net0",
        remove: [{ proto: "tcp", hostPort: 2222, guestPort: 22, hostAddr: "127.0.0.1" }],
        add: [
          { proto: "tcp", hostPort: 2230, guestPort: 22, hostAddr: "127.0.0.1" },
          { proto: "tcp", hostPort: 8080, guestPort: 80, hostAddr: "127.0.0.1" },
        ],
      },
    ]);
    expect(portsOf(vms, "a1")).toEqual(["custom:tcp/8080", "ssh:tcp/2230", "vnc:tcp/5901"]);
    expect(vms.repo.get("a1")?.spec.ports).toMatchObject({ ssh: 2230, custom: [{ hostPort: 8080 }] });
    // 2222 is free again.
    await vms.service.create(request("a2", { sshPort: 2222 }), { wait: true });
  });

  it("a new VNC port waits for the next boot, and the running one stays held until then", async () => {
    expect(await vms.service.modify("a1", { vncPort: 5903 })).toEqual({ nextBoot: true });
    expect(portsOf(vms, "a1")).toEqual(["ssh:tcp/2222", "vnc:tcp/5901", "vnc:tcp/5903"]);
    await expect(vms.service.create(request("a2", { vncPort: 5901 }), { wait: true })).rejects.toThrow(VmConflictError);
    // A reset keeps the same QEMU (still on 5901); a power-off ends it, and the old port is free.
    await vms.service.act("a1", "reset");
    expect(portsOf(vms, "a1")).toEqual(["ssh:tcp/2222", "vnc:tcp/5901", "vnc:tcp/5903"]);
    await vms.service.act("a1", "poweroff");
    expect(portsOf(vms, "a1")).toEqual(["ssh:tcp/2222", "vnc:tcp/5903"]);
    await vms.service.create(request("a2", { vncPort: 5901 }), { wait: true });
  });

  it("frees the old VNC port when a restart boots a new QEMU, and at agent start when none runs", async () => {
    await vms.service.modify("a1", { vncPort: 5903 });
    await until(vms, "a1", (v) => v?.ready === true, "ready");
    await vms.service.act("a1", "restart");
    expect(portsOf(vms, "a1")).toEqual(["ssh:tcp/2222", "vnc:tcp/5903"]);
    await vms.service.modify("a1", { vncPort: 5902 });
    await vms.hypervisor.crash(vms.hypervisor.running()[0]!);
    await vms.restart().then((v) => v.service.reconcile());
    expect(portsOf(vms, "a1")).toEqual(["ssh:tcp/2222", "vnc:tcp/5902"]);
  });

  it("refuses a port another VM holds, in tasks/modify's words, and changes nothing", async () => {
    await vms.service.create(request("a2", { sshPort: 2300 }), { wait: true });
    await expect(vms.service.modify("a1", { sshPort: 2300 })).rejects.toThrow("new_ssh_port 2300 has been used!");
    expect(portsOf(vms, "a1")).toEqual(["ssh:tcp/2222", "vnc:tcp/5901"]);
    expect(vms.hypervisor.forwardChanges).toEqual([]);
  });

  it("a forward the hypervisor refuses leaves the VM on its old ports", async () => {
    vms.hypervisor.updateHostForwards = async () => {
      throw new Error("hostfwd_add: could not set up host forwarding rule");
    };
    await expect(vms.service.modify("a1", { sshPort: 2230 })).rejects.toThrow("could not set up");
    expect(portsOf(vms, "a1")).toEqual(["ssh:tcp/2222", "vnc:tcp/5901"]);
    expect(vms.repo.get("a1")?.spec.ports.ssh).toBe(2222);
    await vms.service.create(request("a2", { sshPort: 2230 }), { wait: true });
  });

  it("CPU and memory of a running VM are stored for its next boot, and must fit beside the other VMs", async () => {
    expect(await vms.service.modify("a1", { cores: 2, memoryMiB: 1024 })).toEqual({ nextBoot: true });
    expect(vms.repo.get("a1")?.spec).toMatchObject({ cpu: { cores: 2, threads: 1 }, memoryMiB: 1024 });
    expect(vms.hypervisor.started).toHaveLength(1);
    expect(vms.repo.logLines("a1", { from: "tail", count: 1 })[0]).toContain("take effect on the next boot");
    await expect(vms.service.modify("a1", { cores: 5 })).rejects.toThrow("allocate cpu failed");
    await expect(vms.service.modify("a1", { memoryMiB: 8 * 1024 })).rejects.toThrow("allocate memory failed");
    // Unchanged sizes are no change at all.
    expect(await vms.service.modify("a1", { cores: 2, memoryMiB: 1024 })).toEqual({ nextBoot: false });
    await until(vms, "a1", (v) => v?.ready === true, "ready");
    await vms.service.act("a1", "restart");
    expect(vms.hypervisor.started.at(-1)).toMatchObject({ cpu: { cores: 2 }, memoryMiB: 1024 });
  });

  it("passwd: through the guest agent, the login password follows; DBC's refusals in DBC's order", async () => {
    await expect(vms.service.setPassword("a1", "tester", "n3w-Secret")).rejects.toMatchObject({ code: "not_responding" });
    vms.hypervisor.guestsHaveAgent = true;
    await expect(vms.service.setPassword("a1", "tester", "")).rejects.toThrow("password can not be empty");
    await expect(vms.service.setPassword("a1", "", "x")).rejects.toThrow("user name can not be empty");
    await vms.service.setPassword("a1", "tester", "n3w-Secret");
    expect(vms.hypervisor.passwords.get(`${vmDir(vms.dataDir, "a1")}/tester`)).toBe("n3w-Secret");
    expect(vms.repo.get("a1")?.spec.loginPassword).toBe("n3w-Secret");
    await vms.service.setPassword("a1", "other", "x1");
    expect(vms.repo.get("a1")?.spec.loginPassword).toBe("n3w-Secret");
    expect(vms.repo.logLines("a1", { from: "tail", count: 5 }).join("\n")).not.toContain("n3w-Secret");
    await vms.service.act("a1", "poweroff");
    await expect(vms.service.setPassword("a1", "tester", "x")).rejects.toThrow("Only the running task can change the password");
  });

  it("exclusive runs under the VM's lock with its live handle: no action overtakes it", async () => {
    const order: string[] = [];
    const held = vms.service.exclusive("a1", async (vm, live) => {
      expect(vm.id).toBe("a1");
      expect(live?.pid).toBeGreaterThan(0);
      await sleep(50);
      order.push("exclusive");
    });
    const action = vms.service.act("a1", "poweroff").then(() => order.push("poweroff"));
    await Promise.all([held, action]);
    expect(order).toEqual(["exclusive", "poweroff"]);
    await expect(vms.service.exclusive("missing", async () => undefined)).rejects.toThrow(VmNotFoundError);
  });
});

describe("VmService.reconcile (an agent restart)", () => {
  it("adopts VMs still running, keeps their ports held, and marks ones that died as closed", async () => {
    await vms.service.create(request("a1", { sshPort: 2222 }), { wait: true });
    await vms.service.create(request("a2", { sshPort: 2223 }), { wait: true });
    await until(vms, "a1", (v) => v?.ready === true, "ready");
    const { service } = await vms.restart();
    // While the agent was away, a2's QEMU died.
    await vms.hypervisor.crash(vmDir(vms.dataDir, "a2"));
    const report = await service.reconcile();
    expect(report).toMatchObject({ adopted: ["a1"], foundStopped: ["a2"], finished: [], orphansQuarantined: [] });
    expect(vms.repo.get("a1")).toMatchObject({ status: "running", ready: true });
    expect(vms.repo.get("a2")?.status).toBe("closed");
    await expect(service.create(request("a3", { sshPort: 2222 }), { wait: true })).rejects.toThrow(VmConflictError);
    // The adopted VM is driven as before.
    await service.act("a1", "shutdown");
    expect(vms.repo.get("a1")?.status).toBe("closed");
  });

  it("sets an adopted VM's live forwards back to its record's and removes secrets a cut-short boot left", async () => {
    await vms.service.create(request("a1", { sshPort: 2222 }), { wait: true });
    const fwd = (hostPort: number) => ({ proto: "tcp" as const, hostAddr: "127.0.0.1", hostPort, guestPort: 22 });
    // The agent died in a modify after QEMU's forwards moved, before the record did; and in a boot.
    await vms.service.exclusive("a1", (_vm, live) => vms.hypervisor.updateHostForwards(live!.qmp, "net0", { remove: [fwd(2222)], add: [fwd(2230)] }));
    await writeFile(join(vmDir(vms.dataDir, "a1"), "fwcfg-password"), "secret-password");
    const { service } = await vms.restart();
    expect((await service.reconcile()).adopted).toEqual(["a1"]);
    expect(await service.exclusive("a1", (_vm, live) => vms.hypervisor.hostForwards(live!.qmp, "net0"))).toEqual([fwd(2222)]);
    expect(vms.repo.logLines("a1", { from: "tail", count: 5 }).join("\n")).toContain("host forwards set back to the recorded ports");
    expect(readdirSync(vmDir(vms.dataDir, "a1"))).not.toContain("fwcfg-password");
  });

  it("undoes a creation the agent died in, finishes a deletion, and quarantines folders no record owns (their QEMU stopped)", async () => {
    await vms.service.create(request("c1", { sshPort: 2222 }), { wait: true });
    await vms.service.create(request("d1"), { wait: true });
    await vms.service.create(request("o1"), { wait: true });
    vms.repo.update("c1", { status: "creating" });
    vms.repo.update("d1", { status: "deleting" });
    vms.repo.delete("o1");
    const { service } = await vms.restart();
    const report = await service.reconcile();
    expect(report.finished.sort()).toEqual(["c1", "d1"]);
    expect(report.orphansQuarantined).toEqual(["o1"]);
    expect(vms.repo.get("c1")).toMatchObject({ status: "create error", lastError: "the agent stopped during creation" });
    expect(vms.repo.get("d1")).toBeUndefined();
    expect(vms.repo.ports()).toEqual([]);
    expect(vms.hypervisor.running()).toEqual([]);
    for (const id of ["c1", "d1", "o1"]) expect(existsSync(vmDir(vms.dataDir, id))).toBe(false);
    // The record was lost, not the data: o1's disk is set aside for the operator.
    const [kept] = readdirSync(quarantineDir(vms.dataDir));
    expect(kept).toMatch(/^o1-/);
    expect(existsSync(join(quarantineDir(vms.dataDir), kept!, "vda.qcow2"))).toBe(true);
  });
});
