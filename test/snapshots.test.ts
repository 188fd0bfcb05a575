import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { call, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { until } from "./helpers/wait.js";
import { DbcClient, DEMO_TASK } from "./helpers/dbc-client.js";
import { endVmTests, freePort, grantNode } from "./helpers/vm.js";
import { followEvents } from "./helpers/events.js";

/*
 * DBC's snapshot/* on a real guest (TCG here): a running task snapshotted live, a new task booted
 * from the snapshot finds what the guest wrote before it (the demo image's /cgi-bin/marker writes to
 * its root disk), and only the snapshot's owner may boot it.
 */
const agents = new TestAgents();
let agent: AgentProcess;
let dbc: DbcClient;
const alice = () => DbcClient.wallet("//batu-snap-alice");
const bob = () => DbcClient.wallet("//batu-snap-bob");
const tasks: Array<{ id: string; port: number }> = [];

async function startTask(who: () => ReturnType<typeof alice>, imageName: string = DEMO_TASK.image_name) {
  const port = await freePort();
  const r = await dbc.call("tasks/start", DbcClient.signed(who()), { ...DEMO_TASK, image_name: imageName, custom_port: [`tcp,${port}:80`] });
  return { r, port };
}

async function marker(port: number, write?: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/cgi-bin/marker${write ? `?${write}` : ""}`);
  return (await res.text()).trim();
}

/** What the first sector of data disk `disk` holds (the demo's /cgi-bin/diskmark), after writing `write` there. */
async function diskMark(port: number, disk: string, write?: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/cgi-bin/diskmark?${disk}${write ? `&${write}` : ""}`);
  return (await res.text()).trim();
}

const snap = (path: string, additional: Record<string, unknown> = {}, who = alice) => dbc.call(`snapshot/${path}`, DbcClient.signed(who()), additional);

beforeAll(async () => {
  await cryptoWaitReady();
  agent = await agents.start({ extraArgs: ["--shutdown-timeout", "10", "--cpu-overcommit", "4"] });
  dbc = new DbcClient(agent.url, agent.nodeId);
  await grantNode(agent, alice().address);
  const { r, port } = await startTask(alice);
  expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
  tasks.push({ id: r.body.message.task_id, port });
  await until(() => dbc.call(`tasks/${tasks[0]!.id}`, DbcClient.signed(alice())), (t) => t.body.message?.ready === true, 60_000, "task ready", 300);
});
afterAll(async () => {
  await endVmTests(agent);
  await agents.cleanup();
});

describe("DBC's snapshot/* on a running guest", () => {
  let snapshotFile: string;

  it("snapshots a running task live; a task booted from it finds what the guest wrote before", async () => {
    const { id, port } = tasks[0]!;
    expect(await until(() => marker(port, "before-snapshot"), (m) => m === "before-snapshot", 20_000, "marker written", 300)).toBe("before-snapshot");
    const r = await snap(`create/${id}`, { snapshot_name: "s1", desc: "first", image_server: "" });
    expect(r.body).toMatchObject({ errcode: 0, message: { snapshot_name: "s1", status: "creating" } });
    expect(r.body.operation_id).toMatch(/^op-/);
    const listed = await until(() => snap(`list/${id}`), (l) => l.body.message?.[0]?.status === "none", 60_000, "snapshot made", 300);
    expect(listed.body.message).toEqual([
      {
        snapshot_name: "s1",
        description: "first",
        snapshot_file: expect.stringMatching(/^snap-.*-s1\.qcow2$/),
        create_time: expect.any(String),
        status: "none",
        disks: ["vda"],
      },
    ]);
    snapshotFile = listed.body.message[0].snapshot_file;
    const op = await dbc.call(`operations/${r.body.operation_id}`, DbcClient.signed(alice()));
    expect(op.body.message).toMatchObject({ action: "snapshot", state: "done", task_id: id });
    // The guest ran on throughout; what it writes now is not in the snapshot.
    expect((await dbc.call(`tasks/${id}`, DbcClient.signed(alice()))).body.message.status).toBe("running");
    expect(await marker(port, "after-snapshot")).toBe("after-snapshot");
    // No temporary file left in the image cache.
    expect(readdirSync(join(agent.options.dataDir, "images")).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    const { r: started, port: port2 } = await startTask(alice, snapshotFile);
    expect(started.body.errcode, JSON.stringify(started.body)).toBe(0);
    const id2 = started.body.message.task_id;
    tasks.push({ id: id2, port: port2 });
    await until(() => dbc.call(`tasks/${id2}`, DbcClient.signed(alice())), (t) => t.body.message?.ready === true, 60_000, "task from the snapshot ready", 300);
    expect(await until(() => marker(port2).catch(() => ""), (m) => m !== "", 20_000, "marker read", 300)).toBe("before-snapshot");
  });

  it("lists one snapshot by name, in DBC's words when there is none", async () => {
    const { id } = tasks[0]!;
    expect((await snap(`list/${id}/s1`)).body.message).toMatchObject({ snapshot_name: "s1", status: "none" });
    expect((await snap(`list/${id}/nope`)).body).toEqual({ errcode: 1, message: "snapshot_name not exist" });
  });

  it("refuses a bad or taken name", async () => {
    const { id } = tasks[0]!;
    expect((await snap(`create/${id}`, { snapshot_name: "s1" })).body).toEqual({ errcode: 1, message: "snapshot_name already exist: s1" });
    expect((await snap(`create/${id}`, { snapshot_name: "../x" })).body).toMatchObject({ errcode: 1, message: expect.stringMatching(/^snapshot_name is invalid/) });
    expect((await snap(`create/${id}`, {})).body).toEqual({ errcode: -25, message: "snapshot_name is empty" });
  });

  it("deletes a snapshot only once no task boots from it; its image goes with it", async () => {
    const { id } = tasks[0]!;
    const second = tasks[1]!;
    expect((await snap(`delete/${id}/s1`)).body).toMatchObject({ errcode: 1, message: expect.stringMatching(/is the image of task/) });
    const del = await dbc.call(`tasks/delete/${second.id}`, DbcClient.signed(alice()));
    expect(del.body.errcode, JSON.stringify(del.body)).toBe(0);
    await until(() => dbc.call("tasks", DbcClient.signed(alice())), (l) => l.body.message?.length === 1, 30_000, "second task deleted", 300);
    expect((await snap(`delete/${id}/s1`)).body).toEqual({ errcode: 0, message: "ok" });
    expect((await snap(`list/${id}`)).body.message).toEqual([]);
    expect(existsSync(join(agent.options.dataDir, "images", snapshotFile))).toBe(false);
  });

  it("another renter of the node sees neither the task nor may boot its owner's snapshot image", async () => {
    const { id } = tasks[0]!;
    expect((await snap(`create/${id}`, { snapshot_name: "s2" })).body.errcode).toBe(0);
    const made = await until(() => snap(`list/${id}/s2`), (l) => l.body.message?.status === "none", 60_000, "snapshot made", 300);
    const file: string = made.body.message.snapshot_file;
    // bob rents the node now (alice's rental revoked: her tasks are shut down by the rental's end).
    await call(`${agent.url}/common/rent/revoke`, { token: agent.adminToken, body: { node_id: agent.nodeId, wallet: alice().address } });
    await grantNode(agent, bob().address);
    expect((await snap(`list/${id}`, {}, bob)).body).toEqual({ errcode: -3, message: "task_id not exist" });
    const { r } = await startTask(bob, file);
    expect(r.body).toEqual({ errcode: 1, message: `'image_name' is not exist: ${file}` });
  });

  it("the host API snapshots a VM by id (this one shut off by its rental's end: from its disk) and lists and deletes it", async () => {
    const vm = (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.owner === alice().address);
    await until(async () => (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.id === vm.id), (v) => v.status === "closed", 30_000, "shut off", 300);
    const made = await call(`${agent.url}/common/vm/snapshot/create`, { token: agent.adminToken, body: { vm_id: vm.id, name: "offline", description: "by the operator" } });
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    expect(made.body.snapshot).toMatchObject({ name: "offline", owner: alice().address, status: "none", image_name: `snap-${vm.id}-offline.qcow2` });
    const list = await call(`${agent.url}/common/vm/snapshot/list?vm_id=${vm.id}`, { token: agent.adminToken });
    expect(list.body.snapshots.map((x: any) => x.name)).toEqual(["s2", "offline"]);
    const bad = await call(`${agent.url}/common/vm/snapshot/create`, { token: agent.adminToken, body: { vm_id: vm.id, name: "a b" } });
    expect(bad.status).toBe(400);
    expect((await call(`${agent.url}/common/vm/snapshot/delete`, { token: agent.adminToken, body: { vm_id: vm.id, name: "offline" } })).status).toBe(200);
  });

  it("restores a shut-off task to a snapshot: what the guest wrote since is gone", async () => {
    const { id: taskId, port } = tasks[0]!;
    const vm = (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.id === taskId || v.owner === alice().address);
    const control = (action: string) => call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body: { vm_id: vm.id, action } });
    const state = async () => (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.id === vm.id);
    // s2 holds "after-snapshot" (written before it was made); the guest writes something else now.
    expect((await control("start")).status).toBe(200);
    await until(state, (v) => v.ready === true, 60_000, "started", 300);
    expect(await until(() => marker(port, "after-s2").catch(() => ""), (m) => m === "after-s2", 20_000, "marker written", 300)).toBe("after-s2");
    const running = await call(`${agent.url}/common/vm/snapshot/restore`, { token: agent.adminToken, body: { vm_id: vm.id, name: "s2" } });
    expect(running.status).toBe(409);
    expect((await control("shutdown")).status).toBe(200);
    await until(state, (v) => v.status === "closed", 60_000, "shut down", 300);
    const restored = await call(`${agent.url}/common/vm/snapshot/restore`, { token: agent.adminToken, body: { vm_id: vm.id, name: "s2" } });
    expect(restored.status, JSON.stringify(restored.body)).toBe(200);
    expect(await state()).toMatchObject({ status: "closed", image_name: expect.stringMatching(/-s2\.qcow2$/) });
    expect((await control("start")).status).toBe(200);
    await until(state, (v) => v.ready === true, 60_000, "started again", 300);
    expect(await until(() => marker(port).catch(() => ""), (m) => m !== "", 20_000, "marker read", 300)).toBe("after-snapshot");
  });

  it("a live snapshot holding a data disk: progress on the event stream, and a restore brings back that disk's content", async () => {
    const { id, port } = tasks[0]!;
    // Alice rents the node again (an earlier case ended her rental and let it to bob).
    await call(`${agent.url}/common/rent/revoke`, { token: agent.adminToken, body: { node_id: agent.nodeId, wallet: bob().address } });
    await grantNode(agent, alice().address);
    const vm = (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.owner === alice().address && v.status === "running");
    const added = await dbc.call(`disk/add/${id}`, DbcClient.signed(alice()), { size: 1 });
    expect(added.body.errcode, JSON.stringify(added.body)).toBe(0);
    const disk: string = (await dbc.call(`disk/list/${id}`, DbcClient.signed(alice()))).body.message.at(-1).name;
    expect(await until(() => diskMark(port, disk, "held-by-snapshot"), (m) => m === "held-by-snapshot", 20_000, "data disk written", 300)).toBe("held-by-snapshot");

    const q = new URLSearchParams({ node: agent.nodeId, ...DbcClient.signed(alice()) } as Record<string, string>);
    const stream = await followEvents(`${agent.url}/api/v1/events?${q}`);
    const r = await snap(`create/${id}`, { snapshot_name: "with-disk", disks: [disk] });
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    const made = await until(() => snap(`list/${id}/with-disk`), (l) => l.body.message?.status === "none", 60_000, "snapshot made", 300);
    expect(made.body.message.disks).toEqual(["vda", disk]);
    await until(async () => stream.operations, (ops) => ops.some((o) => o.operation_id === r.body.operation_id && o.state === "done"), 10_000, "operation end on the stream", 100);
    await stream.stop();
    const ours = stream.operations.filter((o) => o.operation_id === r.body.operation_id);
    expect(ours.at(-1)).toMatchObject({ task_id: id, action: "snapshot", state: "done", progress: "100%", error: null });
    expect(ours.some((o) => o.state === "running" && o.progress !== null)).toBe(true);

    // Written since; then the task shut down and restored: the data disk holds what the snapshot held.
    expect(await diskMark(port, disk, "written-after")).toBe("written-after");
    const control = (action: string) => call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body: { vm_id: vm.id, action } });
    const state = async () => (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.id === vm.id);
    expect((await control("shutdown")).status).toBe(200);
    await until(state, (v) => v.status === "closed", 60_000, "shut down", 300);
    const restored = await dbc.call(`snapshot/restore/${id}/with-disk`, DbcClient.signed(alice()));
    expect(restored.body, JSON.stringify(restored.body)).toMatchObject({ errcode: 0 });
    expect((await control("start")).status).toBe(200);
    await until(state, (v) => v.ready === true, 60_000, "started again", 300);
    expect(await until(() => diskMark(port, disk).catch(() => ""), (m) => m !== "", 20_000, "data disk read", 300)).toBe("held-by-snapshot");
    // A disk the task has not, or vda, is refused in DBC's envelope, naming the field.
    const bad = await snap(`create/${id}`, { snapshot_name: "bad", disks: ["vdz"] });
    expect(bad.body).toMatchObject({ errcode: expect.any(Number), message: "task have no disk:vdz" });
  });
});
