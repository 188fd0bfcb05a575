// The web console in a real browser (headless Chromium through playwright-core) against a real agent
// and a real QEMU guest: sign in, create a VM, watch it become ready through the event stream, open
// its VNC console, see and type into the guest's screen, delete it. Keeps screenshots in docs/img/.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { TestAgents, call, type AgentProcess } from "./helpers/agent-process.js";
import { endVmTests, freePort, grantNode } from "./helpers/vm.js";
import { DbcClient } from "./helpers/dbc-client.js";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { until } from "./helpers/wait.js";

const IMG = resolve(import.meta.dirname, "../docs/img");
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const agents = new TestAgents();
let agent: AgentProcess;
let browser: Browser;
let page: Page;
let rsyncd: ChildProcess | undefined;
/** Every API call the page made (method and path), to show what it does and does not ask. */
const calls: string[] = [];
/** How many dialogs (confirmations) the page opened; each is accepted. */
let dialogCount = 0;

/** The host API as the test sees it (not through the page): what the agent really holds. */
const api = (path: string) => call(`${agent.url}${path}`, { token: agent.adminToken });
const disksOf = async (vmId: string): Promise<{ name: string; size_bytes: number | null }[]> => (await api(`/common/vm/disk/list?vm_id=${vmId}`)).body.disks;

beforeAll(async () => {
  mkdirSync(IMG, { recursive: true });
  // A DBC image server for the images view to pull from: an rsync daemon's module (as test/images.test.ts).
  const rsyncDir = agents.dir("batu-console-rsync-");
  const rsyncPort = await freePort();
  mkdirSync(join(rsyncDir, "images"));
  writeFileSync(join(rsyncDir, "images", "from-rsync.qcow2"), Buffer.alloc(3 * 2 ** 20, 0x5a));
  writeFileSync(join(rsyncDir, "rsyncd.conf"), `use chroot = no\npid file = ${rsyncDir}/rsyncd.pid\n[images]\npath = ${rsyncDir}/images\nread only = yes\n`);
  rsyncd = spawn("rsync", ["--daemon", "--no-detach", `--config=${rsyncDir}/rsyncd.conf`, "--address=127.0.0.1", `--port=${rsyncPort}`], { stdio: "ignore" });
  const dir = agents.dir("batu-console-agent-");
  mkdirSync(join(dir, "conf"), { recursive: true });
  writeFileSync(join(dir, "conf", "config.json"), JSON.stringify({ nickname: "", batu: true, image_servers: [`DBC_1,127.0.0.1,${rsyncPort},images`] }));
  agent = await agents.start({ dir, extraArgs: ["--shutdown-timeout", "10", "--cpu-overcommit", "4"] });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("request", (r) => calls.push(`${r.method()} ${new URL(r.url()).pathname}`));
  page.on("dialog", (d) => {
    dialogCount++;
    void d.accept();
  });
});
afterAll(async () => {
  rsyncd?.kill("SIGTERM");
  await browser?.close();
  if (agent) await endVmTests(agent);
  await agents.cleanup();
});

/** Pixels of the console's canvas: how many are not black, and a checksum of them all. */
function screenPixels(p: Page): Promise<{ width: number; height: number; lit: number; sum: number }> {
  // Runs in the page (its DOM), written without the DOM's types, which this Node project lacks.
  return p.evaluate(() => {
    const document = (globalThis as any).document;
    const canvas = document.querySelector(".screen canvas");
    if (!canvas || canvas.width === 0) return { width: 0, height: 0, lit: 0, sum: 0 };
    const data: Uint8ClampedArray = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let lit = 0;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) {
      const v = data[i]! + data[i + 1]! + data[i + 2]!;
      if (v > 60) lit++;
      sum = (sum * 31 + v * (i + 1)) >>> 0;
    }
    return { width: canvas.width, height: canvas.height, lit, sum };
  });
}

describe("the web console", () => {
  let vmId: string;

  it("serves its page without a token, and refuses a wrong admin token", async () => {
    await page.goto(agent.url);
    await page.fill("input[name=token]", "not-the-token");
    await page.click("button[type=submit]");
    await page.waitForSelector(".error");
    expect(await page.textContent(".error")).toMatch(/wrong bearer token/);
    await page.screenshot({ path: join(IMG, "sign-in.png") });
  });

  it("signs the operator in and creates a VM whose status and readiness arrive through the event stream", async () => {
    await page.fill("input[name=token]", agent.adminToken);
    await page.click("button[type=submit]");
    await page.waitForSelector("text=Virtual machines (0)");
    await page.click("[data-action=new-vm]");
    await page.fill("[data-form=vm-add] input[name=nickname]", "console-1");
    await page.fill("[data-form=vm-add] input[name=memory]", "256M");
    await page.click("[data-form=vm-add] button[type=submit]");
    const row = page.locator("tr[data-vm]");
    await row.waitFor();
    vmId = (await row.getAttribute("data-vm"))!;
    await page.waitForSelector(`tr[data-vm="${vmId}"] td[data-field=ready]:text-is("ready")`, { timeout: 60_000 });
    expect(await row.locator("td[data-field=status]").textContent()).toBe("running");
    // Live without polling: the list came once, through the stream, never from /common/vm/list.
    expect(calls.filter((c) => c.includes("/common/vm/list"))).toEqual([]);
    expect(calls.filter((c) => c === "GET /common/vm/events")).toHaveLength(1);
    await page.screenshot({ path: join(IMG, "vms.png") });
  });

  it("opens the VM's console: the guest's screen shows in the canvas, and keys pressed in the page reach the guest", async () => {
    await page.click(`tr[data-vm="${vmId}"] td.mono`);
    await page.waitForSelector("[data-console-state=connected]", { timeout: 20_000 });
    const shown = await until(() => screenPixels(page), (px) => px.lit > 500, 20_000, "a non-blank guest screen");
    expect(shown.width).toBeGreaterThan(0);
    await page.screenshot({ path: join(IMG, "console.png") });
    // The demo guest runs no shell on its screen (its consoles are serial), so what shows that keys
    // reach it is its kernel: Alt+SysRq+H, pressed in the page, makes it print its SysRq help, which
    // lands in the VM's serial log.
    const serialLog = join(agent.dataDir, "vms", vmId, "serial.log");
    expect(readFileSync(serialLog, "utf8")).not.toMatch(/sysrq: HELP/i);
    await page.click(".screen canvas");
    await page.keyboard.down("Alt");
    await page.keyboard.down("PrintScreen");
    await page.keyboard.press("h");
    await page.keyboard.up("PrintScreen");
    await page.keyboard.up("Alt");
    await until(() => readFileSync(serialLog, "utf8"), (log) => /sysrq: HELP/i.test(log), 15_000, "the guest's SysRq help in its serial log");
  });

  it("charts the VM's figures while the view is open", async () => {
    await page.click("[data-pane=charts]");
    await page.waitForSelector(".chart figcaption strong");
    await until(() => page.textContent(".chart figcaption strong"), (t) => t !== "—", 15_000, "a CPU figure");
    // A few samples (one each 2 s) make a line worth a screenshot.
    const points = () => page.getAttribute(".chart polyline", "points").then((p) => (p ?? "").split(" ").filter(Boolean).length);
    await until(points, (n) => n >= 5, 20_000, "five CPU samples");
    await page.screenshot({ path: join(IMG, "charts.png") });
  });

  it("adds, grows and deletes a data disk of the running VM from its disks pane", async () => {
    await page.click("[data-pane=disks]");
    await page.waitForSelector("tr[data-disk=vda]");
    await page.fill("[data-form=disk-add] input[name=size_gib]", "1");
    await page.click("[data-form=disk-add] button[type=submit]");
    const added = await page.waitForSelector("[data-progress=done]:has-text('Added')", { timeout: 30_000 });
    const name = /Added (vd[b-z])/.exec((await added.textContent())!)![1]!;
    await page.waitForSelector(`tr[data-disk=${name}] td[data-field=size]:text-is("1.0 GiB")`);
    expect((await disksOf(vmId)).find((d) => d.name === name)?.size_bytes).toBe(2 ** 30);
    // Grown BY one GiB, live: the page says so, and so does the agent.
    await page.fill(`tr[data-disk=${name}] input[name=grow_gib]`, "1");
    await page.click(`tr[data-disk=${name}] [data-form=disk-resize] button[type=submit]`);
    await page.waitForSelector(`[data-progress=done]:text-is("${name} is now 2.0 GiB")`, { timeout: 30_000 });
    await page.waitForSelector(`tr[data-disk=${name}] td[data-field=size]:text-is("2.0 GiB")`);
    expect((await disksOf(vmId)).find((d) => d.name === name)?.size_bytes).toBe(2 * 2 ** 30);
    await page.screenshot({ path: join(IMG, "disks.png") });
    // Deleted after a confirmation (the page's dialog, accepted): gone from the page and the agent.
    const dialogs = dialogCount;
    await page.click(`tr[data-disk=${name}] [data-action=disk-delete]`);
    await page.waitForSelector(`tr[data-disk=${name}]`, { state: "detached", timeout: 30_000 });
    expect(dialogCount).toBe(dialogs + 1);
    expect((await disksOf(vmId)).map((d) => d.name)).not.toContain(name);
    // The system disk has no delete.
    expect(await page.locator("tr[data-disk=vda] [data-action=disk-delete]").count()).toBe(0);
  });

  it("takes a live snapshot of the VM and deletes it from its snapshots pane", async () => {
    await page.click("[data-pane=snapshots]");
    await page.waitForSelector("text=No snapshots.");
    await page.fill("[data-form=snapshot-create] input[name=name]", "console-snap");
    await page.fill("[data-form=snapshot-create] input[name=description]", "from the browser");
    await page.click("[data-form=snapshot-create] button[type=submit]");
    await page.waitForSelector("[data-progress=busy]:has-text('Taking snapshot console-snap (live)')");
    await page.waitForSelector("[data-progress=done]:has-text('Snapshot console-snap taken')", { timeout: 60_000 });
    await page.waitForSelector("tr[data-snapshot=console-snap] >> text=from the browser");
    const listed = (await api(`/common/vm/snapshot/list?vm_id=${vmId}`)).body.snapshots;
    expect(listed.map((x: { name: string; description: string }) => [x.name, x.description])).toEqual([["console-snap", "from the browser"]]);
    await page.screenshot({ path: join(IMG, "snapshots.png") });
    await page.click("tr[data-snapshot=console-snap] [data-action=snapshot-delete]");
    await page.waitForSelector("text=No snapshots.", { timeout: 30_000 });
    expect((await api(`/common/vm/snapshot/list?vm_id=${vmId}`)).body.snapshots).toEqual([]);
  });

  it("restores the VM to a snapshot once it is powered off, and shows why the snapshot it boots from cannot be deleted", async () => {
    await page.fill("[data-form=snapshot-create] input[name=name]", "console-restore");
    await page.click("[data-form=snapshot-create] button[type=submit]");
    await page.waitForSelector("tr[data-snapshot=console-restore]", { timeout: 60_000 });
    // Refused while the VM runs: the page shows the agent's reason.
    await page.click("tr[data-snapshot=console-restore] [data-action=snapshot-restore]");
    await page.waitForSelector("[data-pane-body=snapshots] .error:has-text('Restoring console-restore')");
    await page.click(`tr[data-vm="${vmId}"] [data-action=poweroff]`);
    await page.waitForSelector(`tr[data-vm="${vmId}"] td[data-field=status]:has-text("closed")`, { timeout: 30_000 });
    await page.click("tr[data-snapshot=console-restore] [data-action=snapshot-restore]");
    await page.waitForSelector("[data-progress=done]:text-is('Restored console-restore')", { timeout: 30_000 });
    const image = (await api(`/common/vm/snapshot/list?vm_id=${vmId}`)).body.snapshots[0].image_name;
    expect((await api("/common/vm/list")).body.find((v: { id: string }) => v.id === vmId).image_name).toBe(image);
    // The VM boots from it now: the agent refuses its deletion, and the page says so.
    await page.click("tr[data-snapshot=console-restore] [data-action=snapshot-delete]");
    await page.waitForSelector("[data-pane-body=snapshots] .error:has-text('Deleting snapshot console-restore')");
    expect((await api(`/common/vm/snapshot/list?vm_id=${vmId}`)).body.snapshots.map((x: { name: string }) => x.name)).toEqual(["console-restore"]);
    // Started again from the page, it comes back ready from the snapshot.
    await page.click(`tr[data-vm="${vmId}"] [data-action=start]`);
    await page.waitForSelector(`tr[data-vm="${vmId}"] td[data-field=ready]:text-is("ready")`, { timeout: 60_000 });
  });

  it("shows the VM's disk and network caps as the agent reports them", async () => {
    await page.click("[data-pane=limits]");
    await page.waitForSelector("[data-pane-body=limits]");
    const limits = (await api(`/common/vm/limits?vm_id=${vmId}`)).body;
    const shown = (v: number | null, unit: string) => (v === null ? "no cap" : `${v} ${unit}`);
    expect(await page.textContent("td[data-field=disk_iops]")).toBe(shown(limits.disk_iops, "IOPS"));
    expect(await page.textContent("td[data-field=net_mbit]")).toBe(shown(limits.net_mbit, "Mbit/s each way"));
  });

  it("shows the group, this host's GPUs and the node's images", async () => {
    await page.click("[data-tab=group]");
    // A lone agent is the master of a group of one: its list names the master, with no members yet.
    await page.waitForSelector("text=/master 127\\.0\\.0\\.1:\\d+ · 0 members/");
    await page.waitForSelector("text=/No GPUs for passthrough|0000:/");
    await page.screenshot({ path: join(IMG, "group.png") });
    await page.click("[data-tab=images]");
    await page.waitForSelector("td:text-is('batu-demo.qcow2')");
  });

  it("joins a second agent to the group from its console, shows it its master, and removes it from the master's group after a confirmation", async () => {
    const member = await agents.start();
    // The member's own console: it joins the master's group with the master's join token, then shows
    // its master.
    const memberPage = await browser.newPage();
    try {
      await memberPage.goto(member.url);
      await memberPage.fill("input[name=token]", member.adminToken);
      await memberPage.click("button[type=submit]");
      await memberPage.click("[data-tab=group]");
      await memberPage.waitForSelector("[data-part=my-master]:has-text('no member of another')");
      await memberPage.fill("[data-form=group-join] input[name=master]", `127.0.0.1:${agent.port}`);
      await memberPage.fill("[data-form=group-join] input[name=token]", agent.joinToken);
      await memberPage.click("[data-form=group-join] button[type=submit]");
      await memberPage.waitForSelector(`[data-progress=done]:has-text("of 127.0.0.1:${agent.port}")`, { timeout: 30_000 });
      await memberPage.waitForSelector(`[data-part=my-master]:has-text("member of 127.0.0.1:${agent.port}'s group")`);
      const mine = (await call(`${member.url}/slave/group/my/master`, { token: member.adminToken })).body;
      expect(mine.master).toBe(`127.0.0.1:${agent.port}`);
    } finally {
      await memberPage.close();
    }
    // The master's console: no master of its own, the member listed, then removed.
    await page.click("[data-tab=vms]");
    await page.click("[data-tab=group]");
    await page.waitForSelector("[data-part=my-master]:has-text('no member of another')");
    await page.waitForSelector(`[data-member="${member.nodeId}"]`);
    const dialogs = dialogCount;
    await page.click(`[data-member="${member.nodeId}"] [data-action=member-remove]`);
    await page.waitForSelector(`[data-member="${member.nodeId}"]`, { state: "detached" });
    await page.waitForSelector("[data-progress=done]:has-text('Removed')");
    expect(dialogCount).toBe(dialogs + 1);
    expect((await api("/master/group/list")).body.members).toEqual([]);
    await member.stop();
  });

  it("pulls an image from an image server with its progress to done, then deletes it after a confirmation", async () => {
    await page.click("[data-tab=images]");
    await page.selectOption("[data-part=image-server] select[name=server]", "DBC_1");
    await page.click("tr[data-server-image='from-rsync.qcow2'] [data-action=image-pull]");
    await page.waitForSelector("[data-transfer='download:from-rsync.qcow2']");
    await page.waitForSelector("[data-transfer='download:from-rsync.qcow2'][data-status=done]", { timeout: 60_000 });
    expect(calls).toContain("GET /common/image/progress");
    // The finished pull is in the node's images: in the page and in the agent's cache, whole.
    await page.waitForSelector("tr[data-image='from-rsync.qcow2']");
    expect(statSync(join(agent.dataDir, "images", "from-rsync.qcow2")).size).toBe(3 * 2 ** 20);
    expect((await api("/common/image/progress?name=from-rsync.qcow2&direction=download")).body).toMatchObject({ status: "done", progress: 1 });
    await page.screenshot({ path: join(IMG, "images.png") });
    const dialogs = dialogCount;
    await page.click("tr[data-image='from-rsync.qcow2'] [data-action=image-delete]");
    await page.waitForSelector("tr[data-image='from-rsync.qcow2']", { state: "detached" });
    expect(dialogCount).toBe(dialogs + 1);
    expect((await api("/common/image/list")).body.images.map((i: { name: string }) => i.name)).not.toContain("from-rsync.qcow2");
    await page.click("[data-tab=vms]");
    await page.waitForSelector(`tr[data-vm="${vmId}"]`);
  });

  it("grants the node to a renter with caps, revokes the rental, and shows the usage with its CSV", async () => {
    await cryptoWaitReady();
    const wallet = DbcClient.wallet("//batu-console-grantee").address;
    await page.click("[data-tab=rentals]");
    await page.waitForSelector("text=No rentals.");
    // The node id defaults to this node's.
    expect(await page.inputValue("[data-form=rent-grant] input[name=node_id]")).toBe(agent.nodeId);
    await page.fill("[data-form=rent-grant] input[name=wallet]", wallet);
    await page.fill("[data-form=rent-grant] input[name=cpu_cores]", "2");
    await page.fill("[data-form=rent-grant] input[name=net_mbit]", "100");
    await page.click("[data-form=rent-grant] button[type=submit]");
    const row = page.locator("tr[data-rental]");
    await page.waitForSelector("tr[data-rental] td[data-field=state]:has-text('active')");
    const id = Number(await row.getAttribute("data-rental"));
    expect(await row.textContent()).toContain("cpu_cores 2, net_mbit 100");
    const granted = (await api("/common/rent/list")).body.rentals;
    expect(granted).toMatchObject([{ id, node_id: agent.nodeId, renter: wallet, state: "active", cpu_cores: 2, net_mbit: 100, gpus: null }]);
    // About a month ahead (the form's default), in the future.
    expect(Date.parse(granted[0].until) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    await page.screenshot({ path: join(IMG, "rentals.png") });
    await page.click(`tr[data-rental="${id}"] [data-action=revoke]`);
    await page.waitForSelector(`tr[data-rental="${id}"] td[data-field=state]:has-text('revoked')`);
    expect((await api("/common/rent/list")).body.rentals.map((r: { state: string }) => r.state)).toEqual(["revoked"]);
    // Usage: the operator's VM has run since the test began; the page's rows are the agent's.
    const usage = (await api("/common/usage")).body.usage;
    await page.waitForSelector("tr[data-usage=operator]");
    expect(await page.locator("[data-part=usage] tbody tr").count()).toBe(usage.length);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-action=usage-csv]")]);
    expect(download.suggestedFilename()).toBe("batu-usage.csv");
    const csv = readFileSync((await download.path())!, "utf8");
    expect(csv.split("\r\n")[0]).toBe("node_id,renter,from,to,vm_hours,vcpu_hours,mem_gib_hours,gpu_hours");
    expect(csv).toContain(`${agent.nodeId},,`);
    await page.click("[data-tab=vms]");
    await page.waitForSelector(`tr[data-vm="${vmId}"]`);
  });

  it("deletes the VM: its row goes when the stream says so", async () => {
    await page.click(`tr[data-vm="${vmId}"] [data-action=delete]`);
    await page.waitForSelector(`tr[data-vm="${vmId}"]`, { state: "detached", timeout: 60_000 });
    expect(await page.locator("tr[data-vm]").count()).toBe(0);
  });

  it("signs a renter in with a wallet secret (signed in the page), who starts and follows a task, reads and modifies it, grows and deletes a disk, takes and deletes a snapshot, creates and deletes a LAN, and deletes the task", async () => {
    await cryptoWaitReady();
    const secret = "//batu-console-renter";
    await grantNode(agent, DbcClient.wallet(secret).address);
    const before = calls.length;
    await page.click("text=Sign out");
    await page.click("text=Renter: wallet");
    await page.fill("input[name=secret]", secret);
    await page.click("button[type=submit]");
    await page.waitForSelector("text=My tasks on node");
    // The signing code came only now, for the renter, as its own chunk.
    expect(calls.slice(before).some((c) => /\/assets\/wallet-signer-.*\.js$/.test(c))).toBe(true);
    expect(calls.slice(0, before).some((c) => c.includes("wallet-signer"))).toBe(false);
    await page.fill("input[name=mem]", "1");
    await page.click("text=Start a new task");
    const row = page.locator("tr[data-task]");
    await row.waitFor();
    const taskId = (await row.getAttribute("data-task"))!;
    await page.waitForSelector(`tr[data-task="${taskId}"] td:text-is("ready")`, { timeout: 60_000 });
    await page.screenshot({ path: join(IMG, "renter.png") });
    // The task's detail, modify, disks and snapshots, each checked against the renter API itself.
    const pair = DbcClient.wallet(secret);
    const dbc = new DbcClient(agent.url, agent.nodeId);
    const v1 = async (path: string, additional: Record<string, unknown> = {}) => (await dbc.call(path, DbcClient.signed(pair), additional)).body;
    await page.click(`tr[data-task="${taskId}"] td.mono`);
    await page.waitForSelector(`[data-task-detail="${taskId}"] tr[data-field=status] td:text-is("running")`);
    await page.click("[data-task-detail] [data-pane=log]");
    const shownLog = await (await page.waitForSelector("[data-task-detail] pre.log")).textContent();
    const apiLog: string[] = (await v1(`tasks/logs/${taskId}`)).message.log_content;
    expect(apiLog.length).toBeGreaterThan(0);
    expect(shownLog).toContain(apiLog[0]);
    const sshPort = await freePort();
    await page.click("[data-task-detail] [data-pane=modify]");
    await page.fill("[data-form=task-modify] input[name=new_ssh_port]", String(sshPort));
    await page.click("[data-form=task-modify] button[type=submit]");
    await page.waitForSelector("[data-progress=done]:has-text('Modified')", { timeout: 30_000 });
    expect((await v1(`tasks/${taskId}`)).message.ssh_port).toBe(String(sshPort));
    await page.click("[data-task-detail] [data-pane=detail]");
    await page.waitForSelector(`[data-task-detail] tr[data-field=ssh_port] td:text-is("${sshPort}")`);
    await page.click("[data-task-detail] [data-pane=disks]");
    await page.waitForSelector("[data-task-detail] tr[data-disk=vda]");
    await page.click("[data-form=task-disk-add] button[type=submit]");
    await page.waitForSelector("[data-task-detail] tr[data-disk=vdb]", { timeout: 30_000 });
    expect((await v1(`disk/list/${taskId}`)).message.map((d: { name: string }) => d.name)).toEqual(["vda", "vdb"]);
    const sizeOfVdb = async () => (await v1(`disk/list/${taskId}`)).message.find((d: { name: string }) => d.name === "vdb").size;
    const before1 = await sizeOfVdb();
    await page.click("[data-task-detail] tr[data-disk=vdb] button[type=submit]");
    await page.waitForSelector("[data-progress=done]:has-text('Grown')", { timeout: 30_000 });
    const after1 = await sizeOfVdb();
    expect(after1).not.toEqual(before1);
    await page.waitForSelector(`[data-task-detail] tr[data-disk=vdb] td[data-field=size]:text-is("${after1}")`);
    await page.click("[data-task-detail] tr[data-disk=vdb] [data-action=disk-delete]");
    await page.waitForSelector("[data-task-detail] tr[data-disk=vdb]", { state: "detached", timeout: 30_000 });
    expect((await v1(`disk/list/${taskId}`)).message.map((d: { name: string }) => d.name)).toEqual(["vda"]);
    await page.click("[data-task-detail] [data-pane=snapshots]");
    await page.fill("[data-form=task-snapshot-create] input[name=name]", "renter-snap");
    await page.click("[data-form=task-snapshot-create] button[type=submit]");
    await page.waitForSelector("[data-progress=done]:has-text('Snapshot renter-snap')", { timeout: 60_000 });
    await page.waitForSelector("[data-task-detail] tr[data-snapshot=renter-snap]");
    expect((await v1(`snapshot/list/${taskId}`)).message.map((x: { snapshot_name: string }) => x.snapshot_name)).toEqual(["renter-snap"]);
    await page.click("[data-task-detail] tr[data-snapshot=renter-snap] [data-action=snapshot-delete]");
    await page.waitForSelector("[data-task-detail] >> text=No snapshots.", { timeout: 30_000 });
    expect((await v1(`snapshot/list/${taskId}`)).message).toEqual([]);
    // A LAN network of the renter's: created and deleted in the page, as the API lists them.
    await page.fill("[data-form=lan-create] input[name=network_name]", "consolelan");
    await page.fill("[data-form=lan-create] input[name=ip_cidr]", "10.77.0.0/24");
    await page.click("[data-form=lan-create] button[type=submit]");
    await page.waitForSelector("tr[data-lan=consolelan]");
    expect((await v1("lan")).message.map((n: { network_name: string }) => n.network_name)).toEqual(["consolelan"]);
    await page.screenshot({ path: join(IMG, "renter-task.png"), fullPage: true });
    await page.click("tr[data-lan=consolelan] [data-action=lan-delete]");
    await page.waitForSelector("tr[data-lan=consolelan]", { state: "detached" });
    expect((await v1("lan")).message).toEqual([]);
    // The operator's API stays closed to the renter's page: it holds no admin token.
    expect(calls.slice(before).filter((c) => c.includes("/common/"))).toEqual([]);
    await page.click(`tr[data-task="${taskId}"] button:text-is("delete")`);
    await page.waitForSelector(`tr[data-task="${taskId}"]`, { state: "detached", timeout: 60_000 });
  });

  it("signs a renter in with a session id and its signature, and refuses a signature that is not the wallet's", async () => {
    const pair = DbcClient.wallet("//batu-console-renter");
    const dbc = new DbcClient(agent.url, agent.nodeId);
    const sessionId: string = (await dbc.call("mining_nodes/session_id", DbcClient.signed(pair))).body.message.session_id;
    const signIn = async (sign: string) => {
      await page.click("text=Renter: session");
      await page.fill("input[name=session_id]", sessionId);
      await page.fill("input[name=session_sign]", sign);
      await page.click("button[type=submit]");
    };
    await page.click("text=Sign out");
    await signIn(u8aToHex(DbcClient.wallet("//someone-else").sign(sessionId)));
    await page.waitForSelector(".error");
    expect(await page.textContent(".error")).toMatch(/check authority failed/);
    await signIn(u8aToHex(pair.sign(sessionId)));
    await page.waitForSelector(`text=renter session ${sessionId}`);
    await page.waitForSelector("text=My tasks on node");
  });
});
