import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync, closeSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { call, runCli, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { until } from "./helpers/wait.js";
import { DbcClient, DEMO_TASK } from "./helpers/dbc-client.js";
import { endVmTests, freePort, grantNode } from "./helpers/vm.js";
import { followEvents } from "./helpers/events.js";

/*
 * DBC's images/* across two agents on loopback: a master (an image server by default) and a member
 * that knows it as `master`, plus a DBC-style rsync daemon this test starts. The member lists the
 * servers, downloads an image with progress to done (verified by sha256), boots a task from it,
 * refuses a corrupted image, keeps an image in use, uploads a snapshot, and pulls from rsync.
 */
const BUILT = resolve(import.meta.dirname, "../build/images");
const agents = new TestAgents();
let master: AgentProcess;
let member: AgentProcess;
let dbc: DbcClient;
let rsyncd: ChildProcess | undefined;
let taskId: string;
const alice = () => DbcClient.wallet("//batu-images-alice");
const on = (who = alice) => ({ ...DbcClient.signed(who()) });
const images = (path: string, additional: Record<string, unknown>, node = true) =>
  dbc.post(`images${path}`, { peer_nodes_list: node ? [member.nodeId] : [], additional, ...(node ? on() : {}) });

/** Puts a copy of the demo image on the master under `name` (its kernel and initrd with it), as an operator would. */
function offerDemo(name: string): void {
  const cache = join(master.dataDir, "images");
  mkdirSync(cache, { recursive: true });
  copyFileSync(join(BUILT, "batu-demo.qcow2"), join(cache, name));
  const meta = JSON.parse(readFileSync(join(BUILT, "batu-demo.json"), "utf8"));
  writeFileSync(join(cache, name.replace(/\.qcow2$/, ".json")), JSON.stringify({ ...meta, name }));
  for (const f of [meta.kernel, meta.initrd]) if (!existsSync(join(cache, f))) copyFileSync(join(BUILT, f), join(cache, f));
}

beforeAll(async () => {
  await cryptoWaitReady();
  // A DBC image server: an rsync daemon's module, no auth, as DBC's WIKI sets one up.
  const rsyncDir = agents.dir("batu-rsync-");
  const rsyncPort = await freePort();
  mkdirSync(join(rsyncDir, "images"));
  writeFileSync(join(rsyncDir, "images", "from-rsync.qcow2"), Buffer.alloc(3 * 2 ** 20, 0x5a));
  writeFileSync(join(rsyncDir, "rsyncd.conf"), `use chroot = no\npid file = ${rsyncDir}/rsyncd.pid\n[images]\npath = ${rsyncDir}/images\nread only = no\n`);
  rsyncd = spawn("rsync", ["--daemon", "--no-detach", `--config=${rsyncDir}/rsyncd.conf`, "--address=127.0.0.1", `--port=${rsyncPort}`], { stdio: "ignore" });

  master = await agents.start({ dir: agents.dir("batu-images-master-") });
  const memberDir = agents.dir("batu-images-member-");
  mkdirSync(join(memberDir, "conf"), { recursive: true });
  writeFileSync(join(memberDir, "conf", "config.json"), JSON.stringify({ nickname: "", batu: true, image_servers: [`DBC_1,127.0.0.1,${rsyncPort},images`] }));
  member = await agents.start({ dir: memberDir });
  const joined = await call(`${member.url}/slave/group/join`, { token: member.adminToken, body: { master: `127.0.0.1:${master.port}`, token: master.joinToken } });
  expect(joined.status, JSON.stringify(joined.body)).toBe(200);
  dbc = new DbcClient(member.url, member.nodeId);
  await grantNode(member, alice().address);
  offerDemo("demo-copy.qcow2");
});
afterAll(async () => {
  rsyncd?.kill("SIGTERM");
  await endVmTests(member);
  await agents.cleanup();
});

describe("DBC's images/* between a master image server and a member", () => {
  it("lists the servers the member knows and an image server's images in DBC's shape", async () => {
    expect((await images("/servers", {}, false)).body).toEqual({ errcode: 0, message: { image_server: ["DBC_1", "master"] } });
    const listed = await images("", { image_server: "master" }, false);
    expect(listed.body.message).toContainEqual({ image_name: "demo-copy.qcow2", image_size: expect.stringMatching(/^[\d.]+G$/) });
    expect((await images("", { image_server: "nope" }, false)).body).toEqual({ errcode: -25, message: "image_server not exist" });
  });

  it("downloads an image to the node with progress to done, verified; a task boots from it", async () => {
    const q = new URLSearchParams({ node: member.nodeId, ...DbcClient.signed(alice()) } as Record<string, string>);
    const stream = await followEvents(`${member.url}/api/v1/events?${q}`);
    const r = await images("/download", { image_server: "master", image_filename: "demo-copy.qcow2", local_dir: "/ignored" });
    expect(r.body, JSON.stringify(r.body)).toEqual({ errcode: 0, message: "ok" });
    const done = await until(() => images("/downloadprogress", { image_filename: "demo-copy.qcow2" }), (p) => p.body.message?.status !== "downloading", 60_000, "download done", 100);
    expect(done.body).toEqual({ errcode: 0, message: { status: "done", progress: "100%" } });
    // The event stream told the transfer from start to end.
    await until(async () => stream.images, (e) => e.some((i) => i.status === "done"), 5_000, "image event done", 50);
    await stream.stop();
    expect(stream.images[0]).toMatchObject({ image_filename: "demo-copy.qcow2", direction: "download", image_server: "master", status: "downloading", progress: "0%" });
    expect(stream.images.at(-1)).toMatchObject({ status: "done", progress: "100%", error: null });
    const onNode = (await images("", {})).body.message;
    expect(onNode).toContainEqual({ image_name: "demo-copy.qcow2", image_size: expect.any(String) });
    // The images shipped with batu are the node's too.
    expect(onNode).toContainEqual({ image_name: "batu-demo.qcow2", image_size: expect.any(String) });
    // A second download of what the node has is refused.
    expect((await images("/download", { image_server: "master", image_filename: "demo-copy.qcow2" })).body).toMatchObject({ errcode: 1, message: expect.stringMatching(/on this node already/) });
    const port = await freePort();
    const t = await dbc.call("tasks/start", DbcClient.signed(alice()), { ...DEMO_TASK, image_name: "demo-copy.qcow2", custom_port: [`tcp,${port}:80`] });
    expect(t.body.errcode, JSON.stringify(t.body)).toBe(0);
    taskId = t.body.message.task_id;
    await until(() => dbc.call(`tasks/${t.body.message.task_id}`, DbcClient.signed(alice())), (x) => x.body.message?.ready === true, 60_000, "task from the downloaded image ready", 300);
    // In use: the image stays.
    expect((await images("/delete", { image_filename: "demo-copy.qcow2" })).body).toMatchObject({ errcode: 1 });
  }, 120_000);

  it("refuses an image whose bytes do not match its sha256: nothing is kept", async () => {
    // Bytes of its own (a copy of another image would be linked from the member's verified copy),
    // listed once (the server caches its digest), then a byte rots on disk: the server still
    // publishes the old sha256 (its cache is told the file did not change), the bytes differ.
    const path = join(master.dataDir, "images", "rotten.qcow2");
    writeFileSync(path, randomBytes(6 * 2 ** 20));
    await images("", { image_server: "master" }, false);
    // The byte inverted (a fixed value would be the random byte already once in 256 runs).
    const fd = openSync(path, "r+");
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, 4096);
    writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, 4096);
    closeSync(fd);
    const record = join(master.dataDir, "images", ".rotten.qcow2.digest.json");
    const cached = JSON.parse(readFileSync(record, "utf8"));
    writeFileSync(record, JSON.stringify({ ...cached, mtimeMs: statSync(path).mtimeMs }));
    expect((await images("/download", { image_server: "master", image_filename: "rotten.qcow2" })).body.errcode).toBe(0);
    const end = await until(() => images("/downloadprogress", { image_filename: "rotten.qcow2" }), (p) => p.body.message?.status !== "downloading", 60_000, "download ended", 100);
    expect(end.body.message).toMatchObject({ status: "failed", error: expect.stringMatching(/sha256|hash|piece/i) });
    expect(existsSync(join(member.dataDir, "images", "rotten.qcow2"))).toBe(false);
  }, 90_000);

  it("uploads a renter's snapshot to the master: kept with its owner, listed only to the group", async () => {
    const snap = await dbc.call(`snapshot/create/${taskId}`, DbcClient.signed(alice()), { snapshot_name: "up1" });
    expect(snap.body.errcode, JSON.stringify(snap.body)).toBe(0);
    const made = await until(() => dbc.call(`snapshot/list/${taskId}/up1`, DbcClient.signed(alice())), (l) => l.body.message?.status === "none", 60_000, "snapshot made", 300);
    const file = made.body.message.snapshot_file;
    expect((await images("/upload", { image_server: "master", image_filename: file })).body).toEqual({ errcode: 0, message: "ok" });
    const up = await until(() => images("/uploadprogress", { image_filename: file }), (p) => p.body.message?.status !== "uploading", 60_000, "upload done", 100);
    expect(up.body.message, JSON.stringify(up.body)).toMatchObject({ status: "done", progress: "100%" });
    expect(JSON.parse(readFileSync(join(master.dataDir, "images", file.replace(/\.qcow2$/, ".json")), "utf8")).owner).toBe(alice().address);
    // Anyone on the LAN lists the operator's images, not a renter's; the group's nodes see it.
    const anyone = (await fetch(`${master.url}/image-server/v1/images`).then((r) => r.json())) as Array<{ name: string }>;
    expect(anyone.map((i) => i.name)).toContain("demo-copy.qcow2");
    expect(anyone.map((i) => i.name)).not.toContain(file);
    expect((await images("", { image_server: "master" }, false)).body.message.map((i: any) => i.image_name)).toContain(file);
    expect((await fetch(`${master.url}/image-server/v1/images/${file}`)).status).toBe(404);
    // Nobody uploads without being of the group.
    const put = await fetch(`${master.url}/image-server/v1/images/x.qcow2`, { method: "PUT", headers: { "content-type": "application/octet-stream", "x-image-sha256": "0".repeat(64) }, body: "x" });
    expect(put.status).toBe(401);
  }, 120_000);

  it("a snapshot made with DBC's image_server goes up there once made (uploading meanwhile); an unknown server is refused", async () => {
    const bad = await dbc.call(`snapshot/create/${taskId}`, DbcClient.signed(alice()), { snapshot_name: "up2", image_server: "ID_9" });
    expect(bad.body).toEqual({ errcode: -25, message: "image_server not exist" });
    const r = await dbc.call(`snapshot/create/${taskId}`, DbcClient.signed(alice()), { snapshot_name: "up2", image_server: "master" });
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    const op = await until(() => dbc.call(`operations/${r.body.operation_id}`, DbcClient.signed(alice())), (o) => o.body.message?.state !== "running", 60_000, "snapshot and upload ended", 200);
    expect(op.body.message, JSON.stringify(op.body)).toMatchObject({ state: "done", error: null });
    const s = (await dbc.call(`snapshot/list/${taskId}/up2`, DbcClient.signed(alice()))).body.message;
    expect(s.status).toBe("none");
    expect(existsSync(join(master.dataDir, "images", s.snapshot_file))).toBe(true);
  }, 90_000);

  it("the swarm: a second member fetches the image from the member that holds it when the master no longer does", async () => {
    const second = await agents.start({ dir: agents.dir("batu-images-member2-") });
    const joined = await call(`${second.url}/slave/group/join`, { token: second.adminToken, body: { master: `127.0.0.1:${master.port}`, token: master.joinToken } });
    expect(joined.status, JSON.stringify(joined.body)).toBe(200);
    // The master drops its copy (the first member holds one, verified).
    expect((await call(`${master.url}/common/image/delete`, { token: master.adminToken, body: { name: "demo-copy.qcow2" } })).status).toBe(200);
    await until(async () => (await call(`${master.url}/master/group/list`, { token: master.adminToken })).body, (g) => g.member?.filter((m: any) => m.state === "alive").length === 2, 20_000, "both members alive", 200);
    const pulled = await call(`${second.url}/common/image/pull`, { token: second.adminToken, body: { server: "master", name: "demo-copy.qcow2" } });
    expect(pulled.status, JSON.stringify(pulled.body)).toBe(200);
    const end = await until(
      () => call(`${second.url}/common/image/progress?name=demo-copy.qcow2&direction=download`, { token: second.adminToken }),
      (p) => p.body.status !== "downloading",
      60_000,
      "swarm download ended",
      100,
    );
    expect(end.body, JSON.stringify(end.body)).toMatchObject({ status: "done", progress: 1 });
    expect(readFileSync(join(second.dataDir, "images", "demo-copy.qcow2")).equals(readFileSync(join(BUILT, "batu-demo.qcow2")))).toBe(true);
  }, 90_000);

  it("pulls from a DBC rsync image server, hashing what arrived", async () => {
    expect((await images("", { image_server: "DBC_1" }, false)).body.message).toEqual([{ image_name: "from-rsync.qcow2", image_size: expect.any(String) }]);
    expect((await images("/download", { image_server: "DBC_1", image_filename: "from-rsync.qcow2" })).body).toEqual({ errcode: 0, message: "ok" });
    const end = await until(() => images("/downloadprogress", { image_filename: "from-rsync.qcow2" }), (p) => p.body.message?.status !== "downloading", 60_000, "rsync download ended", 100);
    expect(end.body.message).toEqual({ status: "done", progress: "100%" });
    expect(statSync(join(member.dataDir, "images", "from-rsync.qcow2")).size).toBe(3 * 2 ** 20);
    // Not in use: the renter may not delete the operator's image; the operator may.
    expect((await images("/delete", { image_filename: "from-rsync.qcow2" })).body).toMatchObject({ errcode: 1, message: expect.stringMatching(/only the operator/) });
    expect((await call(`${member.url}/common/image/delete`, { token: member.adminToken, body: { name: "from-rsync.qcow2" } })).status).toBe(200);
  }, 60_000);

  it("`batu image …` lists, pulls with progress to done, and deletes through the local agent", async () => {
    const at = ["--conf-dir", member.confDir, "--port", String(member.port)];
    expect(await runCli(["image", "servers", ...at])).toMatchObject({ code: 0, stdout: "DBC_1\nmaster\n" });
    const listed = await runCli(["image", "ls", "--server", "DBC_1", ...at]);
    expect(listed, listed.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(/^from-rsync\.qcow2 {2}0\.00 GiB\n$/) });
    const pulled = await runCli(["image", "pull", "DBC_1", "from-rsync.qcow2", ...at]);
    expect(pulled, pulled.stderr).toMatchObject({ code: 0, stdout: "download of from-rsync.qcow2: done\n" });
    // Not a terminal: a line per tenth, to 100 %.
    expect(pulled.stderr.trim().split("\n").at(-1)).toBe("download from-rsync.qcow2 100%");
    expect((await runCli(["image", "ls", "--json", ...at])).stdout).toContain("from-rsync.qcow2");
    expect(await runCli(["image", "rm", "from-rsync.qcow2", ...at])).toMatchObject({ code: 0, stdout: "deleted from-rsync.qcow2\n" });
    expect(await runCli(["image", "rm", "from-rsync.qcow2", ...at])).toMatchObject({ code: 1, stderr: expect.stringMatching(/not exist/) });
  });
});
