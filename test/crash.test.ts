import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { call, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { DbcClient, DEMO_TASK } from "./helpers/dbc-client.js";
import { control, freePort, listVms, waitForVm } from "./helpers/vm.js";
import { until as waitFor } from "./helpers/wait.js";
import { TRANSITIONAL, type VmStatus } from "../src/vm/state.js";

/*
 * The agent SIGKILLed in the middle of VM operations, then started again on the same dirs: nothing
 * lost, nothing orphaned, every record in a real state. Two halves: named kill points (the agent kills
 * itself at one step, `src/lib/kill-points.ts`), then kills from outside after a random delay
 * (seeded: BATU_CRASH_SEED=<n> replays a run; the seed is printed when a check fails).
 * Real QEMU guests (TCG here); guests are shared between cases to keep the file short.
 * Not reached here: `vm.passwd.after-guest` (the demo guest runs no guest agent), and the
 * `vm.<action>.performed` points whose crash reconcile sees as another case's (start, restart, reset,
 * shutdown, delete). A new operation (disks, snapshots) adds a case per kill point it places.
 */

const SEED = Number(process.env.BATU_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** BATU_CRASH_ROUNDS=<n> for a longer soak. */
const RANDOM_ROUNDS = Number(process.env.BATU_CRASH_ROUNDS ?? 6);
const agents = new TestAgents();
const alice = () => DbcClient.wallet("//batu-crash-alice");
let dir: string;
let armFile: string;
let agent: AgentProcess;
/** A renter's task (DBC's API), started first so that its guest boots while the first cases run. */
let taskId: string;
/** VMs that must still exist after the next crash (a VM is only ever lost by its own deletion). */
const mustExist = new Set<string>();

/** Files that exist only while QEMU starts (secrets it reads at start). */
const START_SECRETS = ["vnc.secret", "fwcfg-password", "fwcfg-hostname"];

async function startAgent(): Promise<void> {
  agent = await agents.start({
    dir,
    extraArgs: ["--shutdown-timeout", "5", "--cpu-overcommit", "8"],
    env: { BATU_KILL_POINTS_FILE: armFile },
  });
}

const dbc = () => new DbcClient(agent.url, agent.nodeId);

async function addVm(nickname: string): Promise<string> {
  const r = await call(`${agent.url}/common/vm/add`, {
    token: agent.adminToken,
    body: { nickname, cpu_physical_core: 1, main_memory: "128M", disk_memory: "64M", custom_port: [`tcp,${await freePort()}:80`] },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  mustExist.add(r.body.id);
  return r.body.id as string;
}

async function act(id: string, action: string): Promise<void> {
  // Asked to go, a VM may be gone after a crash.
  if (action === "delete") mustExist.delete(id);
  const r = await control(agent, { vm_id: id, action });
  expect(r.status, `${action} ${id}: ${JSON.stringify(r.body)}`).toBe(200);
}

/** What the host shows: records and port rows from the store, QEMU processes, folders, listening sockets. */
function observe() {
  const db = new Database(join(dir, "data", "batu.db"), { readonly: true, fileMustExist: true });
  try {
    const vms = db.prepare("SELECT id, status, pid, spec_json FROM vms").all() as Array<{ id: string; status: string; pid: number | null; spec_json: string }>;
    const ports = db.prepare("SELECT port, proto, vm_id FROM vm_ports").all() as Array<{ port: number; proto: string; vm_id: string }>;
    return { vms, ports, qemus: qemuProcesses(), folders: vmFolders(), listening: listeningByPid() };
  } finally {
    db.close();
  }
}

/** Every QEMU running from this test's data dir: pid → VM id (from its pidfile argument). */
function qemuProcesses(): Map<number, string> {
  const vmsDir = join(dir, "data", "vms") + "/";
  const out = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") continue;
    } catch {
      continue;
    }
    if (!argv[0]?.includes("qemu-system")) continue;
    const pidfile = argv[argv.indexOf("-pidfile") + 1] ?? "";
    if (pidfile.startsWith(vmsDir)) out.set(Number(entry), pidfile.slice(vmsDir.length).split("/")[0]!);
  }
  return out;
}

function vmFolders(): Map<string, string[]> {
  const d = join(dir, "data", "vms");
  const out = new Map<string, string[]>();
  if (!existsSync(d)) return out;
  for (const id of readdirSync(d)) out.set(id, readdirSync(join(d, id)));
  return out;
}

/** Listening TCP ports by owning pid (`ss`, as root). */
function listeningByPid(): Map<number, Set<number>> {
  const out = new Map<number, Set<number>>();
  for (const line of execFileSync("ss", ["-Hltnp"], { encoding: "utf8" }).split("\n")) {
    const local = line.trim().split(/\s+/)[3];
    if (!local) continue;
    const port = Number(local.slice(local.lastIndexOf(":") + 1));
    for (const m of line.matchAll(/pid=(\d+)/g)) {
      const pid = Number(m[1]);
      if (!out.has(pid)) out.set(pid, new Set());
      out.get(pid)!.add(port);
    }
  }
  return out;
}

/** The invariants every agent start must restore; answers the records by id. */
function checkInvariants(context: string): Map<string, { status: string; pid: number | null; spec: any }> {
  const seen = observe();
  const problems: string[] = [];
  const records = new Map(seen.vms.map((v) => [v.id, { status: v.status, pid: v.pid, spec: JSON.parse(v.spec_json) }]));
  const qemuOf = new Map<string, number[]>();
  for (const [pid, id] of seen.qemus) qemuOf.set(id, [...(qemuOf.get(id) ?? []), pid]);

  for (const id of mustExist) if (!records.has(id)) problems.push(`vm ${id} was lost`);
  for (const [id, vm] of records) {
    if (TRANSITIONAL.has(vm.status as VmStatus)) problems.push(`vm ${id} left ${vm.status}`);
    const pids = qemuOf.get(id) ?? [];
    if (pids.length > 1) problems.push(`vm ${id} has ${pids.length} QEMUs`);
    if ((vm.status === "running") !== (pids.length === 1)) problems.push(`vm ${id} is ${vm.status} with ${pids.length} QEMU`);
    if (pids.length === 1 && vm.pid !== pids[0]) problems.push(`vm ${id} records pid ${vm.pid}, QEMU is ${pids[0]}`);
    const files = seen.folders.get(id);
    if (vm.status === "create error") {
      if (files) problems.push(`vm ${id} (create error) still has its folder`);
    } else if (!files?.includes("vda.qcow2")) {
      problems.push(`vm ${id} (${vm.status}) has no system disk`);
    }
    for (const f of files ?? []) if (START_SECRETS.includes(f)) problems.push(`vm ${id} left ${f} in its folder`);
    // Data disks: the files in its folder are the ones its record lists.
    if (files) {
      const diskFiles = files.filter((f) => /^vd[b-z]\.qcow2$/.test(f)).sort();
      const recorded = [
        ...(vm.spec.dataDiskBytes && !vm.spec.dataFileName ? ["vdb.qcow2"] : []),
        ...(vm.spec.extraDisks ?? []).map((x: any) => `${x.name}.qcow2`),
      ].sort();
      if (JSON.stringify(diskFiles) !== JSON.stringify(recorded)) problems.push(`vm ${id} has disk files ${diskFiles.join(" ")}, its record ${recorded.join(" ")}`);
    }
    // Reservations: exactly the spec's ports (none once creation failed).
    const held = seen.ports.filter((p) => p.vm_id === id).map((p) => `${p.proto}/${p.port}`).sort();
    const spec = vm.spec.ports;
    const wanted =
      vm.status === "create error"
        ? []
        : [
            ...(spec.ssh !== null ? [`tcp/${spec.ssh}`] : []),
            ...(spec.rdp !== null ? [`tcp/${spec.rdp}`] : []),
            `tcp/${spec.vnc}`,
            ...spec.custom.map((f: any) => `${f.proto}/${f.hostPort}`),
          ].sort();
    if (JSON.stringify(held) !== JSON.stringify(wanted)) problems.push(`vm ${id} holds ports ${held.join(" ")}, its spec ${wanted.join(" ")}`);
    // Forwards: a running QEMU listens on exactly its spec's TCP ports.
    if (pids.length === 1) {
      const listens = [...(seen.listening.get(pids[0]!) ?? [])].map((p) => `tcp/${p}`).sort();
      const tcpWanted = wanted.filter((p) => p.startsWith("tcp/"));
      if (JSON.stringify(listens) !== JSON.stringify(tcpWanted)) problems.push(`vm ${id}'s QEMU listens on ${listens.join(" ")}, its spec ${tcpWanted.join(" ")}`);
    }
  }
  for (const [pid, id] of seen.qemus) if (!records.has(id)) problems.push(`orphan QEMU ${pid} of vm ${id}`);
  for (const id of seen.folders.keys()) if (!records.has(id)) problems.push(`orphan folder of vm ${id}`);
  for (const p of seen.ports) if (!records.has(p.vm_id)) problems.push(`orphan port ${p.proto}/${p.port} of vm ${p.vm_id}`);
  for (const line of agent.logs().split("\n")) if (/"level":(50|60)/.test(line)) problems.push(`agent logged an error: ${line}`);
  expect(problems, `${context} (BATU_CRASH_SEED=${SEED})`).toEqual([]);
  return records;
}

/**
 * Arms `point`, runs `op` (whose reply never comes), and waits for the agent to SIGKILL itself
 * there; then starts it again and checks the invariants. Answers the records after the restart.
 */
async function crashAt(point: string, op: () => Promise<unknown>) {
  writeFileSync(armFile, point);
  const died = agent.expectExit();
  const opDone = op().then(
    () => "answered",
    (e: unknown) => `failed: ${String(e)}`,
  );
  const how = await Promise.race([died, opDone.then(async (r) => (await Promise.race([died, sleep(3000).then(() => r)])))]);
  expect(how, `kill point ${point} was not reached`).toEqual({ code: null, signal: "SIGKILL" });
  expect(existsSync(armFile), `${point}: the file that armed it stays`).toBe(false);
  await agents.stop(agent, "kill");
  await startAgent();
  return checkInvariants(`after a crash at ${point}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function statusOf(records: Map<string, { status: string }>, id: string): string | undefined {
  return records.get(id)?.status;
}

beforeAll(async () => {
  await cryptoWaitReady();
  dir = agents.dir("batu-crash-");
  armFile = join(dir, "kill-point");
  await startAgent();
  const g = await call(`${agent.url}/common/rent/grant`, {
    token: agent.adminToken,
    body: { node_id: agent.nodeId, wallet: alice().address, until: new Date(Date.now() + 3600_000).toISOString() },
  });
  expect(g.status, JSON.stringify(g.body)).toBe(200);
  const r = await dbc().call("tasks/start", DbcClient.signed(alice()), { ...DEMO_TASK, custom_port: [`tcp,${await freePort()}:80`] });
  expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
  taskId = r.body.message.task_id;
  await waitForVm(agent, taskId, (v) => v.status === "running");
  mustExist.add(taskId);
});

afterAll(async () => {
  if (agent && agent.child.exitCode === null && agent.child.signalCode === null) {
    for (const vm of await listVms(agent).catch(() => [])) await control(agent, { vm_id: vm.id, action: "delete" }).catch(() => undefined);
  }
  await agents.cleanup();
  // A failed check may leave guests of this file behind: end them, by pid.
  if (dir) for (const pid of qemuProcesses().keys()) process.kill(pid, "SIGKILL");
});

describe("an agent killed at a named step, restarted on the same dirs", () => {
  it("create: every step before the VM runs ends as create error, with nothing but the record left; it can be deleted", async () => {
    for (const point of ["vm.create.after-insert", "vm.create.after-disks", "vm.boot.after-spawn", "vm.create.before-running"]) {
      const before = new Set((await listVms(agent)).map((v) => v.id));
      const records = await crashAt(point, () => addVm(`crash-${point}`));
      const created = [...records.keys()].filter((id) => !before.has(id));
      expect(created.map((id) => statusOf(records, id)), point).toEqual(["create error"]);
      await act(created[0]!, "delete");
      checkInvariants(`after deleting the vm of ${point}`);
    }
  }, 120_000);

  it("start, poweroff, restart and reset: a VM ends closed or running, as its QEMU is", async () => {
    const id = await addVm("crash-power");
    const cases: Array<[point: string, action: string, after: string]> = [
      ["vm.poweroff.begun", "poweroff", "closed"],
      ["vm.start.begun", "start", "closed"],
      ["vm.boot.after-spawn", "start", "running"],
      ["vm.restart.begun", "restart", "running"],
      ["vm.reset.begun", "reset", "running"],
      ["vm.poweroff.performed", "poweroff", "closed"],
    ];
    for (const [point, action, after] of cases) {
      const records = await crashAt(point, () => act(id, action));
      expect(statusOf(records, id), point).toBe(after);
    }
  }, 120_000);

  it("snapshot: killed once the copy is written, nothing of it is left and the task runs on", async () => {
    const id = taskId;
    const call2 = (path: string, additional: Record<string, unknown> = {}) => dbc().call(`snapshot/${path}/${id}`, DbcClient.signed(alice()), additional);
    await waitForVm(agent, id, (v) => v.status === "running");
    const records = await crashAt("snapshot.create.after-copy", () => call2("create", { snapshot_name: "cut" }));
    expect(statusOf(records, id)).toBe("running");
    expect((await call2("list")).body).toEqual({ errcode: 0, message: [] });
    const images = join(dir, "data", "images");
    expect(readdirSync(images).filter((f) => f.includes("snap-"))).toEqual([]);
    // A restore killed once committed (its journal written, no disk swapped yet), and once the disks
    // are swapped: the next start finishes it, and the record takes the snapshot's image.
    expect((await call2("create", { snapshot_name: "whole" })).body.errcode).toBe(0);
    const made = await waitFor(async () => (await call2("list")).body.message?.[0], (s) => s?.status === "none");
    await act(id, "poweroff");
    for (const point of ["snapshot.restore.after-commit", "snapshot.restore.after-disk"]) {
      const restored = await crashAt(point, () => dbc().call(`snapshot/restore/${id}/whole`, DbcClient.signed(alice())));
      expect(statusOf(restored, id), point).toBe("closed");
      expect((await listVms(agent)).find((v) => v.id === id)?.image_name, point).toBe(made.snapshot_file);
      expect(readdirSync(join(dir, "data", "vms", id)).filter((f) => f.includes("restore")), point).toEqual([]);
    }
    await act(id, "start");
  }, 120_000);

  it("modify and restart of a renter's task: forwards, reservations and record agree after the crash", async () => {
    const id = taskId;
    await waitForVm(agent, id, (v) => v.status === "running" && v.ready === true);
    for (const point of ["vm.modify.after-live-forwards", "vm.modify.saved"]) {
      const port = await freePort();
      const records = await crashAt(point, () => dbc().call(`tasks/modify/${id}`, DbcClient.signed(alice()), { new_custom_port: [`tcp,${port}:80`] }));
      expect(statusOf(records, id), point).toBe("running");
    }
    // A ready guest takes the power button: restart stops it first, then boots it again.
    const records = await crashAt("vm.restart.after-stop", () => act(id, "restart"));
    expect(statusOf(records, id)).toBe("closed");
    await act(id, "start");
    expect(statusOf(await crashAt("vm.shutdown.after-acpi", () => act(id, "shutdown")), id)).toBe("closed");
    await act(id, "start");
    expect(statusOf(await crashAt("vm.delete.after-qemu-quit", () => act(id, "delete")), id)).toBeUndefined();
  }, 120_000);

  it("disks: added, grown or deleted, the disk files and the record agree after the crash, and the VM runs on", async () => {
    const id = await addVm("crash-disks");
    const diskCall = (path: string, body: Record<string, unknown>) => call(`${agent.url}/common/vm/disk/${path}`, { token: agent.adminToken, body: { vm_id: id, ...body } });
    const recorded = (records: Map<string, { spec: any }>) => (records.get(id)!.spec.extraDisks ?? []).map((x: any) => `${x.name}:${x.sizeBytes / 2 ** 30}`);
    let records = await crashAt("disk.add.after-file", () => diskCall("add", { size_gib: 1 }));
    expect(recorded(records)).toEqual([]);
    expect(statusOf(records, id)).toBe("running");
    expect((await diskCall("add", { size_gib: 1 })).status).toBe(200);
    records = await crashAt("disk.resize.after-grow", () => diskCall("resize", { disk: "vdc", grow_gib: 2 }));
    // The file grew before the crash: the record takes its size.
    expect(recorded(records)).toEqual(["vdc:3"]);
    records = await crashAt("disk.delete.after-detach", () => diskCall("delete", { disk: "vdc" }));
    expect(recorded(records)).toEqual(["vdc:3"]);
    expect((await diskCall("delete", { disk: "vdc" })).status).toBe(200);
    checkInvariants("after the disk cases");
  }, 120_000);

  it("delete: from any step, the VM is gone with its QEMU, folder and ports", async () => {
    for (const point of ["vm.delete.begun", "vm.delete.after-folder-removed", "vm.delete.after-ports-released"]) {
      const id = await addVm(`crash-${point}`);
      const records = await crashAt(point, () => act(id, "delete"));
      expect(statusOf(records, id), point).toBeUndefined();
    }
  }, 120_000);
});

describe("an agent killed from outside after a random delay", () => {
  it(`leaves the same invariants, round after round (seed ${SEED})`, async () => {
    const random = rng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    for (let round = 0; round < RANDOM_ROUNDS; round++) {
      const vms = await listVms(agent);
      const settled = vms.filter((v) => !TRANSITIONAL.has(v.status));
      const choices: Array<[what: string, op: () => Promise<unknown>]> = [];
      if (vms.length < 2) choices.push(["create", () => addVm(`random-${round}`)]);
      for (const v of settled) {
        const actions = v.status === "create error" ? ["delete"] : v.status === "running" ? ["poweroff", "restart", "reset", "delete"] : ["start", "delete"];
        choices.push(...actions.map((a): [string, () => Promise<unknown>] => [`${a} of a ${v.status} vm`, () => act(v.id, a)]));
      }
      const [what, op] = pick(choices);
      const delayMs = Math.floor(random() * 600);
      const pending = op().catch(() => undefined);
      await sleep(delayMs);
      await agents.stop(agent, "kill");
      await pending;
      await startAgent();
      checkInvariants(`random round ${round}: ${what}, killed after ${delayMs} ms`);
    }
    // Everything left can still be deleted, and then nothing remains.
    for (const v of await listVms(agent)) await act(v.id, "delete");
    const records = checkInvariants("after deleting every vm");
    expect(records.size).toBe(0);
    expect(vmFolders().size).toBe(0);
  }, 60_000 + RANDOM_ROUNDS * 10_000);
});
