import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { u8aToHex } from "@polkadot/util";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { join } from "node:path";
import { call, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { until } from "./helpers/wait.js";
import { followEvents } from "./helpers/events.js";
import { DbcClient } from "./helpers/dbc-client.js";
import { freePort, holdPort, httpStatus, processAlive } from "./helpers/vm.js";
import { existsSync, readFileSync } from "node:fs";

const agents = new TestAgents();
let agent: AgentProcess;
let dbc: DbcClient;
const alice = () => DbcClient.wallet("//batu-alice");
const bob = () => DbcClient.wallet("//batu-bob");

async function grant(body: Record<string, unknown>) {
  return call(`${agent.url}/common/rent/grant`, { token: agent.adminToken, body: { node_id: agent.nodeId, ...body } });
}

/** Polls a task's detail (as the renter) until `pred` holds; the task's detail. */
async function waitTask(identity: () => Record<string, unknown>, id: string, pred: (t: any) => boolean, timeoutMs = 60_000) {
  const last = await until(
    async () => (await dbc.call(`tasks/${id}`, identity())).body,
    (r) => r.errcode === 0 && pred(r.message),
    timeoutMs,
    `task ${id} in the expected state`,
    200,
  );
  return last.message;
}

beforeAll(async () => {
  await cryptoWaitReady();
  agent = await agents.start({ extraArgs: ["--shutdown-timeout", "20", "--cpu-overcommit", "4"] });
  dbc = new DbcClient(agent.url, agent.nodeId);
});
afterAll(async () => {
  // Errors the agent logged are the first thing to read when a test here fails.
  const errors = agent.logs().split("\n").filter((l) => /"level":(50|60)/.test(l));
  if (errors.length) console.error(errors.join("\n"));
  const vms = await call(`${agent.url}/common/vm/list`, { token: agent.adminToken }).catch(() => ({ body: [] as any[] }));
  for (const vm of vms.body ?? []) await call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body: { vm_id: vm.id, action: "delete" } });
  await agents.cleanup();
});

describe("a DBC client against batu", () => {
  let taskId: string;
  let httpPort: number;

  it("mining_nodes: lists this node without identity, and answers node info with DBC's fields", async () => {
    const all = await dbc.post("mining_nodes", { peer_nodes_list: [], additional: {} });
    expect(all.status).toBe(200);
    expect(all.body).toEqual({ errcode: 0, message: { mining_nodes: [expect.objectContaining({ node_id: agent.nodeId, version: expect.any(String), state: "online" })] } });
    const info = await dbc.call("mining_nodes", {});
    expect(info.body.errcode).toBe(0);
    const m = info.body.message;
    for (const k of ["version", "ip", "os", "cpu", "gpu", "mem", "disk_system", "disk_data", "images"]) expect(m).toHaveProperty(k);
    // Every field DBC fills, as DBC's strings: the address masked, the clock, the disk's kind.
    expect(m.ip).toBe("*.0.*.1");
    expect(m.cpu).toEqual({ type: expect.any(String), hz: expect.stringMatching(/^\d+MHz$/), cores: expect.any(String), used_usage: expect.stringMatching(/%$/), physical_cpus: expect.any(String) });
    expect(Number(m.cpu.cores)).toBeGreaterThan(0);
    expect(m.disk_system.type).toMatch(/^(SSD|HDD)$/);
    expect(m.disk_data[0].type).toBe(m.disk_system.type);
    expect(m.mem.size).toMatch(/^\d+(\.\d+)?G$/);
    expect(m.images).toContainEqual(expect.objectContaining({ image_name: "batu-demo.qcow2" }));
    expect(m.accelerator.type).toMatch(/^(kvm|tcg)$/);
  });

  it("refuses a renter before the node is rented to it", async () => {
    const r = await dbc.call("tasks", DbcClient.signed(alice()));
    expect(r).toMatchObject({ status: 200, body: { errcode: -3, message: "check authority failed: machine is not be rented" } });
  });

  it("creates a task at once (status creating), which runs and becomes ready", async () => {
    const until = new Date(Date.now() + 3600_000).toISOString();
    const g = await grant({ wallet: alice().address, until });
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    httpPort = await freePort();
    // Follow the task's state over the event stream, with a session identity in the query.
    const sessionId = (await dbc.call("mining_nodes/session_id", DbcClient.signed(alice()))).body.message.session_id;
    const q = new URLSearchParams({ node: agent.nodeId, session_id: sessionId, session_id_sign: u8aToHex(alice().sign(sessionId)) });
    // Opens with 200 and text/event-stream, or throws.
    const stream = await followEvents(`${agent.url}/api/v1/events?${q}`);
    const r = await dbc.call("tasks/start", DbcClient.signed(alice()), {
      image_name: "batu-demo.qcow2",
      desc: 'a "quoted" desc, with \\ and unicode ✓',
      operation_system: "linux",
      bios_mode: "legacy",
      cpu_cores: "1",
      mem_size: "1",
      disk_size: "1",
      custom_port: [`tcp,${httpPort}:80`],
    });
    expect(r.status).toBe(200);
    expect(r.body.errcode).toBe(0);
    expect(r.body.message).toMatchObject({ status: "creating", desc: 'a "quoted" desc, with \\ and unicode ✓', task_id: expect.stringMatching(/^[1-9A-Za-z]{22}$/) });
    expect(r.body.message.create_time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(r.body.operation_id).toMatch(/^op-/);
    taskId = r.body.message.task_id;
    const t = await waitTask(() => DbcClient.signed(alice()), taskId, (x) => x.status === "running" && x.ready === true);
    // DBC's types: cpu_cores and gpu_count numbers, the rest strings.
    expect(t).toMatchObject({ task_id: taskId, os: "linux", user_name: "root", cpu_cores: 1, gpu_count: 0, mem_size: "1G", status: "running" });
    for (const k of ["ssh_ip", "ssh_port", "login_password", "vnc_port", "vnc_password", "create_time", "desc", "disk_system"]) {
      expect(typeof t[k], k).toBe("string");
    }
    expect(t.login_password).toMatch(/^[A-Za-z][A-Za-z0-9_/+[\]@#^]{15}$/);
    expect(t.vnc_password).toBe(t.login_password.slice(0, 8));
    expect(t.disks.map((d: any) => d.name)).toEqual(["vda", "vdb"]);
    // Recorded when vda was made, not read from the disk per request.
    expect(t.disk_system).toMatch(/^\d+(\.\d+)?G$/);
    expect(t.disks[0].size).toBe(t.disk_system);
    expect(t.interface[0]).toMatchObject({ name: "default", type: "virtio", mac_address: expect.stringMatching(/^52:54:00/) });
    expect(await httpStatus(httpPort)).toBe(200);
    await stream.stop();
    const mine = stream.events.filter((e) => e.task_id === taskId);
    expect(mine.map((e) => e.status)).toEqual(expect.arrayContaining(["creating", "running"]));
    expect(mine.some((e) => e.ready)).toBe(true);
    const list = await dbc.call("tasks", DbcClient.signed(alice()));
    expect(list.body).toEqual({ errcode: 0, message: [{ task_id: taskId, create_time: t.create_time, desc: t.desc, status: "running" }] });
  });

  it("hands a session id to a second user, who drives the task with it", async () => {
    const s = await dbc.call("mining_nodes/session_id", DbcClient.signed(alice()));
    expect(s.body.errcode).toBe(0);
    const sessionId: string = s.body.message.session_id;
    expect((await dbc.call("mining_nodes/session_id", DbcClient.signed(alice()))).body.message.session_id).toBe(sessionId);
    const session = { session_id: sessionId, session_id_sign: u8aToHex(alice().sign(sessionId)) };
    const detail = await dbc.call(`tasks/${taskId}`, session);
    expect(detail.body.errcode).toBe(0);
    expect(detail.body.message.task_id).toBe(taskId);
    // The session is reusable: the same signature works again.
    expect((await dbc.call("tasks", session)).body.message).toHaveLength(1);
    // A session signed by someone else is refused.
    const forged = { session_id: sessionId, session_id_sign: u8aToHex(bob().sign(sessionId)) };
    expect((await dbc.call("tasks", forged)).body).toMatchObject({ errcode: -3, message: expect.stringMatching(/^check authority failed/) });
  });

  it("holds at most 8 event streams open per renter; a closed one frees its place", async () => {
    const sessionId: string = (await dbc.call("mining_nodes/session_id", DbcClient.signed(alice()))).body.message.session_id;
    const url = `${agent.url}/api/v1/events?${new URLSearchParams({ node: agent.nodeId, session_id: sessionId, session_id_sign: u8aToHex(alice().sign(sessionId)) })}`;
    const streams = await Promise.all(Array.from({ length: 8 }, () => followEvents(url)));
    const ninth = await fetch(url);
    expect(ninth.status).toBe(429);
    expect(await ninth.json()).toEqual({ errcode: -3, message: "too many event streams: at most 8 open at once per renter" });
    await streams.pop()!.stop();
    const again = await until(() => followEvents(url).catch(() => undefined), (s) => s !== undefined, 5_000, "a place freed");
    streams.push(again!);
    await Promise.all(streams.map((s) => s.stop()));
  });

  it("logs: head and tail of the task's lifecycle log", async () => {
    const tail = await dbc.call(`tasks/logs/${taskId}?flag=tail&line_num=2`, DbcClient.signed(alice()));
    expect(tail.body.errcode).toBe(0);
    expect(tail.body.message.task_id).toBe(taskId);
    expect(tail.body.message.log_content).toHaveLength(2);
    const head = await dbc.call(`tasks/logs/${taskId}?flag=head&line_num=1`, DbcClient.signed(alice()));
    expect(head.body.message.log_content[0]).toMatch(/created/);
    expect((await dbc.call(`tasks/logs/${taskId}?flag=middle`, DbcClient.signed(alice()))).body).toEqual({ errcode: -25, message: 'head_or_tail is invalid"' });
  });

  it("shutdown → closed, start → running, restart → running, delete → gone", async () => {
    const me = () => DbcClient.signed(alice());
    const stop = await dbc.call(`tasks/shutdown/${taskId}`, me());
    expect(stop.body).toEqual({ errcode: 0, message: "ok", operation_id: expect.stringMatching(/^op-/) });
    await waitTask(me, taskId, (t) => t.status === "closed");
    expect((await dbc.call(`tasks/start/${taskId}`, me())).body.errcode).toBe(0);
    await waitTask(me, taskId, (t) => t.status === "running" && t.ready);
    const again = await dbc.call(`tasks/start/${taskId}`, me());
    expect(again.body).toEqual({ errcode: 1, message: "task is running" });
    expect((await dbc.call(`tasks/restart/${taskId}?force_reboot=true`, me())).body.errcode).toBe(0);
    await waitTask(me, taskId, (t) => t.status === "running" && t.ready);
    // Ports change at once on the running task; a port in use on the host is refused.
    const newPort = await freePort();
    const mod = await dbc.call(`tasks/modify/${taskId}`, me(), { new_custom_port: [`tcp,${newPort}:80`] });
    expect(mod.body).toEqual({ errcode: 0, message: "ok" });
    expect(await httpStatus(newPort)).toBe(200);
    expect(await httpStatus(httpPort, 1000)).toBe(0);
    const held = await holdPort();
    const taken = await dbc.call(`tasks/modify/${taskId}`, me(), { new_custom_port: [`tcp,${held.port}:80`] });
    held.server.close();
    expect(taken.body).toEqual({ errcode: 1, message: `new_custom_port ${held.port} has been used!` });
    expect(await httpStatus(newPort)).toBe(200);
    const pid = Number(readFileSync(join(agent.dataDir, "vms", taskId, "qemu.pid"), "utf8"));
    expect((await dbc.call(`tasks/delete/${taskId}`, me())).body.errcode).toBe(0);
    const gone = await (async () => {
      for (let i = 0; i < 100; i++) {
        const r = await dbc.call(`tasks/${taskId}`, me());
        if (r.body.errcode !== 0) return r.body;
        await new Promise((res) => setTimeout(res, 100));
      }
      return undefined;
    })();
    expect(gone).toEqual({ errcode: -3, message: "task_id not exist" });
    expect(processAlive(pid)).toBe(false);
    expect(existsSync(join(agent.dataDir, "vms", taskId))).toBe(false);
  });
});

describe("DBC's own Node.js backend (NodeScript's bodies and readings)", () => {
  // As RentVirtualApiNew.js sends them: every value String()-ed, unused ones empty, a 22-character
  // task id of its own, port ranges, a rent order, and a wallet identity before a session one.
  const taskId = "NodeScript0000000000A1";
  const me = () => ({ ...DbcClient.signed(alice()), rent_order: "1" });
  let session: () => Record<string, unknown>;
  let sshPort: number;

  it("creates a task with the client's own id and string-typed, partly empty fields; a restart a second later does not stall", async () => {
    const g = await grant({ wallet: alice().address, until: new Date(Date.now() + 3600_000).toISOString() });
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    sshPort = await freePort();
    const range = await freePort();
    const vncPort = await freePort();
    const r = await dbc.call("tasks/start", me(), {
      task_id: taskId,
      ssh_port: String(sshPort),
      custom_port: [`tcp,${range}-${range + 1}`, `udp,${range}-${range + 1}`],
      image_name: "batu-demo.qcow2",
      gpu_count: "0",
      cpu_cores: "1",
      mem_size: "1",
      disk_size: "1",
      vnc_port: String(vncPort),
      rdp_port: "",
      operation_system: "linux",
      bios_mode: "legacy",
      data_file_name: "",
      public_ip: "",
      network_filters: [],
      network_name: "",
      vm_xml: "",
      vm_xml_url: "",
    });
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    expect(r.body.message.task_id).toBe(taskId);
    await waitTask(me, taskId, (t) => t.status === "running", 30_000);
    await new Promise((res) => setTimeout(res, 1000));
    // The guest is still booting (no ACPI yet): the restart resets it instead of waiting out the 20 s shutdown bound.
    expect((await dbc.call(`tasks/restart/${taskId}`, me(), {})).body.errcode).toBe(0);
    await waitTask(me, taskId, (t) => t.status === "running", 20_000);
    // The whole log: a guest reset while booting may report several resets after batu's line.
    const log = await dbc.call(`tasks/logs/${taskId}?flag=tail&line_num=100`, me());
    expect(log.body.message.log_content.join("\n")).toContain("reset instead");
    const t = await waitTask(me, taskId, (x) => x.status === "running" && x.ready);
    expect(t.ssh_port).toBe(String(sshPort));
    expect(t.custom_port).toEqual(expect.arrayContaining([`tcp,${range}:${range}`, `udp,${range + 1}:${range + 1}`]));
    // Its session, asked for with the wallet identity, drives the task from then on.
    const sessionId: string = (await dbc.call("mining_nodes/session_id", me())).body.message.session_id;
    session = () => ({ session_id: sessionId, session_id_sign: u8aToHex(alice().sign(sessionId)) });
    expect((await dbc.call(`tasks/${taskId}`, session())).body.errcode).toBe(0);
  }, 120_000);

  it("modify with every field sent, the unchanged ones empty: ok; CPU and memory wait for the next boot", async () => {
    const unchanged = { new_ssh_port: "", new_vnc_port: "", new_rdp_port: "", new_gpu_count: "", new_cpu_cores: "", new_mem_size: "" };
    const newSsh = await freePort();
    const ports = await dbc.call(`tasks/modify/${taskId}`, session(), { ...unchanged, new_ssh_port: String(newSsh) });
    expect(ports.body).toEqual({ errcode: 0, message: "ok" });
    expect((await dbc.call(`tasks/${taskId}`, session())).body.message.ssh_port).toBe(String(newSsh));
    const sized = await dbc.call(`tasks/modify/${taskId}`, session(), { ...unchanged, new_cpu_cores: "2", new_mem_size: "1" });
    expect(sized.body).toEqual({ errcode: 0, message: "some changes will take effect on the next boot" });
    const detail = (await dbc.call(`tasks/${taskId}`, session())).body.message;
    expect(detail).toMatchObject({ status: "running", cpu_cores: 2 });
    expect((await dbc.call(`tasks/modify/${taskId}`, session(), unchanged)).body).toEqual({ errcode: 0, message: "ok" });
  });

  it("passwd: DBC's checks; a guest without an agent gets a clear error", async () => {
    expect((await dbc.call(`tasks/passwd/${taskId}`, me(), { username: "root", password: "" })).body).toEqual({ errcode: 1, message: "password can not be empty" });
    expect((await dbc.call(`tasks/passwd/${taskId}`, me(), { username: "", password: "x" })).body).toEqual({ errcode: 1, message: "user name can not be empty" });
    const r = await dbc.call(`tasks/passwd/${taskId}`, me(), { username: "root", password: "An0ther-Secret" });
    expect(r.body).toMatchObject({ errcode: 1, message: expect.stringMatching(/^set user password failed: the guest agent did not answer/) });
  });

  it("free_memory answers ok (this node's operator has not allowed dropping caches)", async () => {
    expect((await dbc.call("mining_nodes/free_memory", me())).body).toEqual({ errcode: 0, message: "ok" });
  });

  it("poweroff, then passwd is refused as DBC refuses it; delete", async () => {
    expect((await dbc.call(`tasks/poweroff/${taskId}`, me())).body.errcode).toBe(0);
    await waitTask(me, taskId, (t) => t.status === "closed");
    expect((await dbc.call(`tasks/passwd/${taskId}`, me(), { username: "root", password: "x" })).body).toEqual({ errcode: 1, message: "Only the running task can change the password" });
    expect((await dbc.call(`tasks/delete/${taskId}`, me())).body.errcode).toBe(0);
    await until(async () => (await dbc.call(`tasks/${taskId}`, me())).body, (b) => b.errcode === -3, 30_000, "task deleted");
  });
});

describe("refusals, each with DBC's errcode and nothing created", () => {
  async function noTasks() {
    const vms = await call(`${agent.url}/common/vm/list`, { token: agent.adminToken });
    expect(vms.body).toEqual([]);
  }

  it("replayed nonce, wrong signature, another wallet's signature", async () => {
    const first = DbcClient.signed(alice());
    expect((await dbc.call("tasks", first)).body.errcode).toBe(0);
    const replay = await dbc.call("tasks", first);
    expect(replay.body).toMatchObject({ errcode: -3, message: expect.stringMatching(/^check authority failed: nonce check failed/) });
    const nonce = DbcClient.nonce();
    const wrong = await dbc.call("tasks", { wallet: alice().address, nonce, sign: u8aToHex(alice().sign(nonce + "x")) });
    expect(wrong.body.errcode).toBe(-3);
    const other = await dbc.call("tasks", { wallet: alice().address, nonce, sign: u8aToHex(bob().sign(nonce)) });
    expect(other.body.errcode).toBe(-3);
    // Bob signs for himself: valid, but he rents nothing here.
    expect((await dbc.call("tasks", DbcClient.signed(bob()))).body).toEqual({ errcode: -3, message: "check authority failed: wallet not rented" });
  });

  it("malformed bodies: DBC's -25 with HTTP 400 and a message; every reply valid JSON", async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ additional: {} }, /peer_nodes_list/],
      [{ peer_nodes_list: "x", additional: {} }, /peer_nodes_list/],
      [{ peer_nodes_list: [agent.nodeId] }, /additional/],
      [{ peer_nodes_list: [agent.nodeId], additional: [] }, /additional/],
    ];
    for (const [body, message] of cases) {
      const r = await dbc.post("tasks/start", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errcode).toBe(-25);
      expect(r.body.message).toMatch(message);
    }
    const notJson = await dbc.post("tasks/start", '{"peer_nodes_list": [');
    expect(notJson.status).toBe(400);
    expect(notJson.body.errcode).toBe(-25);
    const unknown = await dbc.post("nope", { peer_nodes_list: [], additional: {} });
    expect(unknown).toMatchObject({ status: 404, body: { errcode: -32601 } });
    await noTasks();
  });

  it("bad task parameters: bad ports, unequal port ranges, sizes beyond the host", async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ cpu_cores: "1", mem_size: "1", ssh_port: "22a" }, /^ssh_port is not digit$/],
      [{ cpu_cores: "1", mem_size: "1", vnc_port: "100" }, /^vnc_port is invalid \(usage: \[5900, 65535\]\)$/],
      [{ cpu_cores: "1", mem_size: "1", custom_port: ["tcp,100-102:200-201"] }, /custom_port/],
      [{ cpu_cores: "0", mem_size: "1" }, /^cpu_cores is invalid$/],
      [{ cpu_cores: "1", mem_size: "100000" }, /allocate mem failed/],
      [{ cpu_cores: "1", mem_size: "1", operation_system: "plan9" }, /^unsupported operation system/],
      [{ cpu_cores: "1", mem_size: "1", image_name: "nope.qcow2" }, /'image_name' is not exist/],
      [{ cpu_cores: "1", mem_size: "1", task_id: "short" }, /^wrong task id length$/],
    ];
    for (const [additional, message] of cases) {
      const r = await dbc.call("tasks/start", DbcClient.signed(alice()), additional);
      expect(r.status, JSON.stringify(additional)).toBe(200);
      expect(r.body.errcode, JSON.stringify(additional)).toBe(1);
      expect(r.body.message).toMatch(message);
    }
    await noTasks();
  });

  it("another renter's task is `task_id not exist`, never a hint (the task boots with UEFI firmware)", async () => {
    const r = await dbc.call("tasks/start", DbcClient.signed(alice()), { cpu_cores: 1, mem_size: 1, bios_mode: "uefi" });
    expect(r.body.errcode).toBe(0);
    const id = r.body.message.task_id;
    await waitTask(() => DbcClient.signed(alice()), id, (t) => t.status === "running" && t.ready, 90_000);
    expect(existsSync(join(agent.dataDir, "vms", id, "OVMF_VARS.fd"))).toBe(true);
    // The node passes to Bob; Alice's task stays Alice's.
    const rentals = await call(`${agent.url}/common/rent/list`, { token: agent.adminToken });
    for (const r of rentals.body.rentals) {
      if (r.state === "active") await call(`${agent.url}/common/rent/revoke`, { token: agent.adminToken, body: { id: r.id } });
    }
    expect((await grant({ wallet: bob().address, until: new Date(Date.now() + 3600_000).toISOString() })).status).toBe(200);
    for (const path of [`tasks/${id}`, `tasks/shutdown/${id}`, `tasks/delete/${id}`]) {
      const b = await dbc.call(path, DbcClient.signed(bob()));
      expect(b.body, path).toEqual({ errcode: -3, message: "task_id not exist" });
    }
    expect((await dbc.call("tasks", DbcClient.signed(bob()))).body).toEqual({ errcode: 0, message: [] });
    // The operator deletes it (the host API sees every VM).
    expect((await call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body: { vm_id: id, action: "delete" } })).status).toBe(200);
  });

  it("expired and revoked rentals", async () => {
    const list = await call(`${agent.url}/common/rent/list`, { token: agent.adminToken });
    for (const r of list.body.rentals) {
      if (r.state === "active") await call(`${agent.url}/common/rent/revoke`, { token: agent.adminToken, body: { id: r.id } });
    }
    const revoked = await dbc.call("tasks", DbcClient.signed(bob()));
    expect(revoked.body).toEqual({ errcode: -3, message: "check authority failed: machine is not be rented" });
    const past = await grant({ wallet: alice().address, until: new Date(Date.now() - 1000).toISOString() });
    expect(past.status).toBe(400); // a grant must end in the future
    const soon = await grant({ wallet: alice().address, until: new Date(Date.now() + 1500).toISOString() });
    expect(soon.status).toBe(200);
    expect((await dbc.call("tasks", DbcClient.signed(alice()))).body.errcode).toBe(0);
    await new Promise((r) => setTimeout(r, 1600));
    const expired = await dbc.call("tasks", DbcClient.signed(alice()));
    expect(expired.body).toMatchObject({ errcode: -3, message: expect.stringMatching(/^check authority failed: machine (is not be rented|has already expired)/) });
  });

  it("a rental that runs out: the renter's VM is shut down at once and kept for the retention", async () => {
    const endsAt = new Date(Date.now() + 8000).toISOString();
    expect((await grant({ wallet: alice().address, until: endsAt })).status).toBe(200);
    const r = await dbc.call("tasks/start", DbcClient.signed(alice()), { image_name: "batu-demo.qcow2", cpu_cores: "1", mem_size: "1", disk_size: "1" });
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    const id: string = r.body.message.task_id;
    // Watched as the operator: the renter is refused on the node once the rental is over.
    const vm = async () => (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.id === id);
    expect(await until(vm, (v) => v.status === "running")).toMatchObject({ owner: alice().address, rental_ended_at: null });
    // Shut down at the end (a guest still booting ignores ACPI: powered off after --shutdown-timeout).
    const closed = await until(vm, (v) => v.status === "closed", 60_000);
    expect(closed.rental_ended_at).toBe(endsAt);
    expect((await dbc.call(`tasks/${id}`, DbcClient.signed(alice()))).body.message).toMatch(/^check authority failed: machine (is not be rented|has already expired)/);
    const log = (await call(`${agent.url}/common/vm/log?vm_id=${id}`, { token: agent.adminToken })).body.lines.join("\n");
    const deleteAt = new Date(Date.parse(endsAt) + 10 * 24 * 3600_000).toISOString();
    expect(log).toContain(`rental ended at ${endsAt}: the VM is shut down, and deleted at ${deleteAt} unless its renter rents this node again`);
    expect(log).toMatch(/shutdown\n/);
    // The disks stay for the retention; the operator may start it again (for the renter's data), and it stays up.
    expect((await call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body: { vm_id: id, action: "start" } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await vm()).toMatchObject({ status: "running", rental_ended_at: endsAt });
    expect((await call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body: { vm_id: id, action: "delete" } })).status).toBe(200);
    expect((await call(`${agent.url}/common/vm/log?vm_id=no-such-vm`, { token: agent.adminToken })).status).toBe(404);
  }, 120_000);
});
