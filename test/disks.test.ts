import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { call, runCli, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { until } from "./helpers/wait.js";
import { DbcClient, DEMO_TASK } from "./helpers/dbc-client.js";
import { endVmTests, freePort, grantNode } from "./helpers/vm.js";

/*
 * DBC's disk/* on a real guest (TCG here): a disk added to, grown in and removed from a running task,
 * seen by the guest itself (the demo image's /cgi-bin/disks lists /sys/block with sizes), and DBC's
 * refusals. One guest for the file.
 */
const GiB = 2 ** 30;
const agents = new TestAgents();
let agent: AgentProcess;
let dbc: DbcClient;
let taskId: string;
let httpPort: number;
const alice = () => DbcClient.wallet("//batu-disk-alice");
const bob = () => DbcClient.wallet("//batu-disk-bob");

/** What the guest sees: device → size in bytes. */
async function guestDisks(): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/cgi-bin/disks`);
  if (res.status !== 200) throw new Error(`guest answered ${res.status}`);
  return Object.fromEntries((await res.text()).trim().split("\n").map((l) => l.split(" ")).map(([d, s]) => [d!, Number(s)]));
}

const disk = (path: string, additional: Record<string, unknown>, who = alice) => dbc.call(`disk/${path}/${taskId}`, DbcClient.signed(who()), additional);

beforeAll(async () => {
  await cryptoWaitReady();
  agent = await agents.start({ extraArgs: ["--shutdown-timeout", "10", "--cpu-overcommit", "4"] });
  dbc = new DbcClient(agent.url, agent.nodeId);
  await grantNode(agent, alice().address);
  httpPort = await freePort();
  const r = await dbc.call("tasks/start", DbcClient.signed(alice()), { ...DEMO_TASK, custom_port: [`tcp,${httpPort}:80`] });
  expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
  taskId = r.body.message.task_id;
  await until(() => dbc.call(`tasks/${taskId}`, DbcClient.signed(alice())), (t) => t.body.message?.ready === true, 60_000, "task ready", 300);
  await until(guestDisks, (d) => d.vdb === GiB, 30_000, "guest's disk list", 300).catch(() => undefined);
});
afterAll(async () => {
  await endVmTests(agent);
  await agents.cleanup();
});

describe("DBC's disk/* on a running guest", () => {
  it("lists the task's disks with file names only", async () => {
    const r = await disk("list", {});
    expect(r.body).toEqual({
      errcode: 0,
      message: [
        { name: "vda", file: "vda.qcow2", size: expect.stringMatching(/^\d+(\.\d+)?G$/) },
        { name: "vdb", file: "vdb.qcow2", size: "1G" },
      ],
    });
    expect(await guestDisks()).toMatchObject({ vdb: GiB });
  });

  it("adds a disk the running guest sees at once, and the task detail lists it", async () => {
    const r = await disk("add", { size: 2, mount_dir: "/data" });
    expect(r.body).toEqual({ errcode: 0, message: { name: "vdc", size: "2G" } });
    await until(guestDisks, (d) => d.vdc === 2 * GiB, 15_000, "vdc in the guest", 200);
    const t = await dbc.call(`tasks/${taskId}`, DbcClient.signed(alice()));
    expect(t.body.message.status).toBe("running");
    expect(t.body.message.disks.map((d: any) => [d.name, d.size])).toEqual([
      ["vda", expect.any(String)],
      ["vdb", "1G"],
      ["vdc", "2G"],
    ]);
  });

  it("grows a disk BY the size asked, live: the guest sees the new size", async () => {
    const r = await disk("resize", { disk: "vdb", size: 1 });
    expect(r.body).toEqual({ errcode: 0, message: { name: "vdb", size: "2G" } });
    await until(guestDisks, (d) => d.vdb === 2 * GiB, 15_000, "vdb grown in the guest", 200);
  });

  it("deletes a disk: the guest releases it and it is gone; vda never", async () => {
    const r = await disk("delete", { disk: "vdc" });
    expect(r.body).toEqual({ errcode: 0, message: "ok" });
    expect(await guestDisks()).not.toHaveProperty("vdc");
    expect((await disk("list", {})).body.message.map((d: any) => d.name)).toEqual(["vda", "vdb"]);
    expect((await disk("delete", { disk: "vda" })).body).toEqual({ errcode: 1, message: "can not allowed to delete disk:'vda'" });
  });

  it("refuses bad input in DBC's words, and another renter's task is not found", async () => {
    expect((await disk("add", { size: "2" })).body).toEqual({ errcode: 1, message: "'size' is invalid" });
    expect((await disk("add", { size: 0 })).body).toEqual({ errcode: 1, message: "'size' is invalid" });
    expect((await disk("add", { size: 1_000_000 })).body).toMatchObject({ errcode: 1, message: expect.stringMatching(/'size' is invalid|allocate disk failed/) });
    expect((await disk("add", { size: 60_000 })).body).toMatchObject({ errcode: 1, message: expect.stringMatching(/^allocate disk failed/) });
    expect((await disk("resize", { size: 1 })).body).toEqual({ errcode: 1, message: "'disk' is empty" });
    expect((await disk("resize", { disk: "vdq", size: 1 })).body).toEqual({ errcode: 1, message: "task have no disk:vdq" });
    expect((await disk("resize", { disk: "../etc", size: 1 })).body).toEqual({ errcode: 1, message: "task have no disk:../etc" });
    expect((await disk("delete", { disk: "vdq" })).body).toEqual({ errcode: 1, message: "task have no disk:vdq" });
    // bob rents nothing here: refused before anything; alice's task is hers alone.
    expect((await disk("list", {}, bob)).body.errcode).toBe(-3);
    expect((await disk("list", {})).body.message.map((d: any) => d.name)).toEqual(["vda", "vdb"]);
  });

  it("the host API has the same, by VM id", async () => {
    const vm = (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.owner === alice().address);
    const add = await call(`${agent.url}/common/vm/disk/add`, { token: agent.adminToken, body: { vm_id: vm.id, size_gib: 1 } });
    expect(add.body).toEqual({ message: "ok", name: "vdc" });
    await until(guestDisks, (d) => d.vdc === GiB, 15_000, "vdc in the guest", 200);
    const list = await call(`${agent.url}/common/vm/disk/list?vm_id=${vm.id}`, { token: agent.adminToken });
    expect(list.body.disks.map((d: any) => [d.name, d.size_bytes])).toEqual([
      ["vda", expect.any(Number)],
      ["vdb", 2 * GiB],
      ["vdc", GiB],
    ]);
    expect((await call(`${agent.url}/common/vm/disk/resize`, { token: agent.adminToken, body: { vm_id: vm.id, disk: "vdc", grow_gib: 1 } })).body).toEqual({
      message: "ok",
      name: "vdc",
      size_bytes: 2 * GiB,
    });
    const bad = await call(`${agent.url}/common/vm/disk/delete`, { token: agent.adminToken, body: { vm_id: vm.id, disk: "sda" } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/disk/);
    expect((await call(`${agent.url}/common/vm/disk/delete`, { token: agent.adminToken, body: { vm_id: vm.id, disk: "vdc" } })).status).toBe(200);
    await until(guestDisks, (d) => !("vdc" in d), 15_000, "vdc gone from the guest", 200);
  });

  it("`batu vm disk …` and `batu vm snapshot …` drive the same through the local agent", async () => {
    const vm = (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.owner === alice().address);
    const at = ["--conf-dir", agent.confDir, "--port", String(agent.port)];
    const added = await runCli(["vm", "disk", "add", vm.id, "--size", "1", ...at]);
    expect(added, added.stderr).toMatchObject({ code: 0, stdout: "added vdc\n" });
    const list = await runCli(["vm", "disk", "list", vm.id, "--json", ...at]);
    expect(JSON.parse(list.stdout).disks.map((d: any) => d.name)).toEqual(["vda", "vdb", "vdc"]);
    expect((await runCli(["vm", "disk", "resize", vm.id, "vdc", "--grow", "1", ...at])).stdout).toBe("vdc is 2.00 GiB\n");
    expect((await runCli(["vm", "disk", "delete", vm.id, "vdc", ...at])).code).toBe(0);
    const bad = await runCli(["vm", "disk", "add", vm.id, "--size", "0", ...at]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--size/);
    const snap = await runCli(["vm", "snapshot", "create", vm.id, "cli-1", "--desc", "from the CLI", ...at]);
    expect(snap, snap.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(/^snapshot cli-1: image snap-.*-cli-1\.qcow2\n$/) });
    expect((await runCli(["vm", "snapshot", "list", vm.id, ...at])).stdout).toMatch(/^cli-1  none  /);
    expect((await runCli(["vm", "snapshot", "delete", vm.id, "cli-1", ...at])).code).toBe(0);
    const none = await runCli(["vm", "snapshot", "delete", vm.id, "cli-1", ...at]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/snapshot_name not exist/);
  });
});
