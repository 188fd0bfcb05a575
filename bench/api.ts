/**
 * Renter API bench: requests per second and p50/p99 latency of `POST /api/v1/tasks` (the renter's
 * task list) and `POST /api/v1/tasks/<id>` (one task's detail) with 1,000 tasks in the store, against
 * a bare node:http server answering the same bytes batu answered, and against the floor: a bare
 * Fastify with batu's logging answering them too (what any handler costs under that policy).
 *
 *   npm run bench:api -- [--duration 10] [--warmup 3] [--threads 2] [--connections 32] [--tasks 1000] [--no-json]
 *                        [--agent-cpu-prof DIR]   (diagnostic: V8 CPU profile of the measured agent; slows it)
 *
 * A real agent (dist/cli/main.js, `npm run build` first) on loopback with temporary conf/data dirs:
 * started once empty (identity, store, rental to the bench's wallet, session id), stopped, 1,000
 * closed tasks of that wallet written into its store, started again (reconcile timed). wrk POSTs
 * the DBC body with session_id + session_id_sign (a reusable identity: nonces are single-use).
 * Per endpoint: one warm-up run of each server, then batu, bare, floor, batu, bare, floor; medians reported.
 * Prints the table and writes bench/results/api-<date>.json. Needs wrk and qemu-img.
 */
import { Keyring } from "@polkadot/keyring";
import { u8aToHex } from "@polkadot/util";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ApiAgent, cpuDelta, procCpu } from "./lib/api-agent.js";
import { runProbes } from "./lib/api-probes.js";
import { formatDetails, formatTable, rows, TARGET_RATIO, type ApiRun, type EndpointResult, type Sys } from "./lib/api-report.js";
import { seedTasks } from "./lib/api-store.js";
import { BareHttp } from "./lib/bare-http.js";
import { Cleanup } from "./lib/cleanup.js";
import { breakdown, formatBreakdown, newestProfile, type Window } from "./lib/cpu-profile.js";
import { benchLog, checkInterrupted, cmdline, loadAvg, qemuPids, sleep } from "./lib/proc.js";
import { runWrk, stopWrk, writeScript, type WrkOptions } from "./lib/wrk.js";

const REPO = resolve(import.meta.dirname, "..");
const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" },
    threads: { type: "string", default: "2" },
    connections: { type: "string", default: "32" },
    tasks: { type: "string", default: "1000" },
    "no-json": { type: "boolean", default: false },
    "agent-cpu-prof": { type: "string" },
  },
});
const WRK: WrkOptions = { threads: Number(flags.threads), connections: Number(flags.connections), durationS: Number(flags.duration) };
const WARMUP_S = Number(flags.warmup);
const ORDER = [[1, "batu"], [1, "bare"], [1, "floor"], [2, "batu"], [2, "bare"], [2, "floor"]] as const;
const TASKS = Number(flags.tasks);
if (!(WRK.threads >= 1 && WRK.connections >= WRK.threads && WRK.durationS >= 1 && WARMUP_S >= 0 && TASKS >= 1 && TASKS <= 1000)) {
  console.error("usage: api.ts [--duration S≥1] [--warmup S≥0] [--threads N] [--connections N≥threads] [--tasks 1..1000] [--no-json]");
  process.exit(2);
}

const started = Date.now();
const log = benchLog(started);
const cleanup = new Cleanup();
cleanup.installSignalHandlers();

/** Share of all CPUs busy over `ms` (/proc/stat), before the bench starts anything: others' load. */
async function machineBusy(ms: number): Promise<number> {
  const read = () => {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

async function main(): Promise<void> {
  for (const tool of ["wrk", "qemu-img"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`]);
    } catch {
      throw new Error(`${tool} is not installed`);
    }
  }
  await cryptoWaitReady();
  const root = mkdtempSync("/tmp/batu-bench-api-");
  cleanup.add("remove temp dir", () => rmSync(root, { recursive: true, force: true }));
  const confDir = join(root, "conf");
  const dataDir = join(root, "data");
  const logPath = join(root, "agent.log");
  let agent: ApiAgent | null = null;
  cleanup.add("stop the agent", () => agent?.stop());
  cleanup.add("stop wrk", () => stopWrk());
  const load0 = await loadAvg();
  const busy0 = await machineBusy(2000);
  log(`temp dir ${root}; ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}); load ${load0}; CPUs ${(busy0 * 100).toFixed(0)} % busy before the bench`);
  if (busy0 > 0.1) log("WARNING: other processes keep the CPUs busy: figures will be lower and noisier than on an idle machine");

  // --- 1. an empty agent: identity, store, rental and session id of the renter ---------------------
  agent = await ApiAgent.start(confDir, dataDir, logPath);
  const emptyStartMs = agent.startMs;
  log(`agent (empty store) pid ${agent.pid} at ${agent.url}, listening after ${emptyStartMs.toFixed(0)} ms`);
  const pair = new Keyring({ type: "sr25519" }).addFromUri("//batu-bench-api-renter");
  const renterId = pair.address; // SS58, prefix 42: a plain wallet's renter id
  const until = new Date(Date.now() + 86_400_000).toISOString();
  const grant = await agent.post("/common/rent/grant", { node_id: agent.nodeId, wallet: renterId, until });
  if (grant.status !== 200) throw new Error(`rent/grant: HTTP ${grant.status}: ${grant.bytes.toString()}`);
  const nonce = randomBytes(27).toString("hex");
  const s = await agent.post("/api/v1/mining_nodes/session_id", { peer_nodes_list: [agent.nodeId], additional: {}, wallet: renterId, nonce, sign: u8aToHex(pair.sign(nonce)) });
  if (s.json.errcode !== 0) throw new Error(`session_id: ${s.bytes.toString()}`);
  const sessionId: string = s.json.message.session_id;
  const sessionSign = u8aToHex(pair.sign(sessionId));
  const nodeId = agent.nodeId;
  await agent.stop();

  // --- 2. 1,000 closed tasks straight into the store, then the agent again (reconcile timed) -------
  const seeded = await seedTasks({ dataDir, root, owner: renterId, count: TASKS, baseImage: join(REPO, "build/images/batu-demo.qcow2") });
  log(`${TASKS} closed tasks of ${renterId} written to the store in ${seeded.ms.toFixed(0)} ms`);
  const logOffset = agent.logBytes();
  const prof = flags["agent-cpu-prof"];
  agent = await ApiAgent.start(confDir, dataDir, logPath, prof ? ["--cpu-prof", `--cpu-prof-dir=${resolve(prof)}`] : []);
  if (prof) log(`WARNING: the agent runs under --cpu-prof (profile written to ${prof} at its exit): its figures are not comparable`);
  const lines = ApiAgent.lines(logPath, logOffset);
  const recIdx = lines.findIndex((l) => l.msg === "vms reconciled");
  const rec = lines[recIdx];
  const reconcileMs = rec && recIdx > 0 ? (rec.time ?? 0) - (lines[recIdx - 1]!.time ?? 0) : null;
  log(
    `agent (${TASKS} tasks) pid ${agent.pid} at ${agent.url}, listening after ${agent.startMs.toFixed(0)} ms (empty: ${emptyStartMs.toFixed(0)} ms); ` +
      `reconcile ≈ ${reconcileMs ?? "?"} ms: ${JSON.stringify(rec ? { adopted: rec.adopted, foundStopped: rec.foundStopped, finished: rec.finished, orphansQuarantined: rec.orphansQuarantined ?? rec.orphansRemoved } : null)}`,
  );
  const a = agent;
  const body = JSON.stringify({ peer_nodes_list: [nodeId], additional: {}, session_id: sessionId, session_id_sign: sessionSign });
  const closedTasks = async () => {
    const r = await a.post("/api/v1/tasks", body);
    if (r.json.errcode !== 0) throw new Error(`tasks: ${r.bytes.toString().slice(0, 300)}`);
    const list = r.json.message as Array<{ status: string }>;
    return { total: list.length, closed: list.filter((t) => t.status === "closed").length };
  };
  const qemuOfOurs = async () => (await Promise.all((await qemuPids()).map(cmdline))).filter((c) => c?.join(" ").includes(root)).length;
  const atStart = await closedTasks();
  if (atStart.total !== TASKS || atStart.closed !== TASKS) throw new Error(`after the restart: ${JSON.stringify(atStart)} (want ${TASKS} closed)`);
  if (await qemuOfOurs()) throw new Error("a QEMU runs from the bench's data dir: a task booted");
  log(`all ${TASKS} tasks closed after the restart; no QEMU started`);

  // --- 3. batu's replies, then the bare server serving exactly those bytes -------------------------
  const detailId = seeded.ids[Math.floor(seeded.ids.length / 2)]!;
  const eps: EndpointResult[] = [];
  const replies: Record<string, { type: string; bytes: Buffer }> = {};
  for (const [key, label, path] of [["list", "tasks list", "/api/v1/tasks"], ["detail", "task detail", `/api/v1/tasks/${detailId}`]] as const) {
    const r = await a.post(path, body);
    if (r.status !== 200 || r.json.errcode !== 0) throw new Error(`${path}: HTTP ${r.status}: ${r.bytes.toString().slice(0, 300)}`);
    if (key === "detail" && r.json.message.disk_system !== "20G") throw new Error(`detail: disk_system ${JSON.stringify(r.json.message.disk_system)}, want 20G (reading the size of a record without one failed?)`);
    replies[path] = { type: r.type, bytes: r.bytes };
    eps.push({ key, label, path, replyBytes: r.bytes.length, runs: [] });
    log(`${label}: batu answers ${r.bytes.length} bytes (${r.type})`);
  }
  const bare = await BareHttp.start(join(root, "bare-bodies.json"), replies);
  cleanup.add("stop the bare server", () => bare.stop());
  for (const ep of eps) {
    const got = Buffer.from(await (await fetch(`${bare.url}${ep.path}`, { method: "POST", body })).arrayBuffer());
    if (!got.equals(replies[ep.path]!.bytes)) throw new Error(`bare server's ${ep.path} reply differs from batu's`);
  }
  log(`bare node:http server pid ${bare.pid} at ${bare.url}: same bytes as batu for both calls`);
  const floorLog = join(root, "floor.log");
  const floor = await BareHttp.start(join(root, "floor-bodies.json"), replies, "fastify", { repo: REPO, logPath: floorLog });
  cleanup.add("stop the floor server", () => floor.stop());
  for (const ep of eps) {
    const got = Buffer.from(await (await fetch(`${floor.url}${ep.path}`, { method: "POST", headers: { "content-type": "application/json" }, body })).arrayBuffer());
    if (!got.equals(replies[ep.path]!.bytes)) throw new Error(`floor server's ${ep.path} reply differs from batu's`);
  }
  log(`floor (bare fastify + batu's logging) pid ${floor.pid} at ${floor.url}: same bytes as batu for both calls`);

  // --- 4. probes of the calls' pieces, on the idle machine -----------------------------------------
  const probes = await runProbes({
    dbPath: join(dataDir, "batu.db"), owner: renterId, detailId, diskPath: join(dataDir, "vms", detailId, "vda.qcow2"),
    sessionId, sessionSign, publicKey: pair.publicKey,
  });
  log(`probes: qemu-img info ${probes.qemuImgInfo.wallMs.toFixed(1)} ms wall / ${probes.qemuImgInfo.cpuMs.toFixed(1)} ms CPU; session check ${(probes.sessionVerifyMs * 1000).toFixed(0)} µs (remembered ${(probes.sessionRememberedMs * 1000).toFixed(1)} µs); list read ${probes.list.summariesMs.toFixed(2)} ms`);

  // --- 5. wrk: per endpoint a warm-up of each, then batu, bare, floor, batu, bare, floor ------------
  const script = join(root, "post.lua");
  writeScript(script, body);
  const servers: Record<Sys, { url: string; pid: number; logBytes: (() => number) | null }> = {
    batu: { url: a.url, pid: a.pid, logBytes: () => a.logBytes() },
    bare: { url: bare.url, pid: bare.pid, logBytes: null },
    floor: { url: floor.url, pid: floor.pid, logBytes: () => statSync(floorLog).size },
  };
  const measure = async (ep: EndpointResult, sys: Sys, durationS: number, round: number): Promise<ApiRun> => {
    const srv = servers[sys];
    const cpu0 = procCpu(srv.pid);
    const log0 = srv.logBytes?.() ?? 0;
    const wrk = await runWrk(`${srv.url}${ep.path}`, script, { ...WRK, durationS });
    const run: ApiRun = { system: sys, round, wrk, serverCpu: cpuDelta(cpu0, procCpu(srv.pid)), logBytes: srv.logBytes ? srv.logBytes() - log0 : null };
    // wrk counts HTTP errors only; a DBC refusal is a 200 with a short body: the bytes per response tell.
    if (wrk.non2xx || wrk.socketErrors || wrk.bytesPerRequest < ep.replyBytes * 0.99) {
      throw new Error(`${sys} ${ep.label}: ${wrk.non2xx} non-2xx, ${wrk.socketErrors} socket errors, ${wrk.bytesPerRequest.toFixed(0)} B per response (reply is ${ep.replyBytes} B)`);
    }
    log(`${ep.label}, ${sys}${round ? ` round ${round}` : " warm-up"}: ${wrk.rps.toFixed(0)} req/s, p50 ${wrk.latencyMs.p50.toFixed(2)} ms, p99 ${wrk.latencyMs.p99.toFixed(2)} ms`);
    return run;
  };
  const windows: Window[] = [];
  const us = () => Number(process.hrtime.bigint() / 1000n);
  const warmups: ApiRun[] = [];
  for (const ep of eps) {
    if (WARMUP_S > 0) for (const sys of ["batu", "bare", "floor"] as const) warmups.push(await measure(ep, sys, WARMUP_S, 0));
    for (const [round, sys] of ORDER) {
      checkInterrupted();
      const from = us();
      ep.runs.push(await measure(ep, sys, WRK.durationS, round));
      if (sys === "batu") windows.push({ key: ep.label, fromUs: from, toUs: us() });
    }
  }
  const atEnd = await closedTasks();
  if (atEnd.total !== TASKS || atEnd.closed !== TASKS || (await qemuOfOurs())) throw new Error(`tasks changed during the bench: ${JSON.stringify(atEnd)}`);
  await a.stop(); // a profiled agent writes its profile as it exits
  const profFile = prof ? newestProfile(prof) : null;
  const profile = profFile ? breakdown(profFile, windows) : null;

  // --- 6. report ------------------------------------------------------------------------------------
  const table = rows(eps);
  const details = formatDetails(table, eps, probes, WRK.connections);
  const note =
    `NOTE: ${availableParallelism()} CPUs: wrk (-t${WRK.threads}) runs on the same machine and competes with the server for them ` +
    `(see wrk's CPU per request above); all servers are measured under the same handicap, but absolute req/s are lower than on a separate client.`;
  if (profile) details.push(`agent main thread during the batu runs (V8 profile ${profFile}; profiled, so slower than unprofiled):`, ...formatBreakdown(profile));
  console.log(`\n${formatTable(table, eps)}\n${details.join("\n")}\n${note}`);
  console.log(`wrk -t${WRK.threads} -c${WRK.connections} -d${WRK.durationS}s --latency; ${TASKS} tasks; medians of 2 runs each, order ${ORDER.map(([, s]) => s).join(", ")} after a ${WARMUP_S} s warm-up of each`);
  const load1 = await loadAvg();
  log(`load ${load0} → ${load1}`);
  if (!flags["no-json"]) {
    const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
    const dir = join(REPO, "bench/results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `api-${stamp}.json`);
    const record = {
      date: new Date().toISOString(),
      command: ["npm run bench:api", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" "),
      config: { wrk: WRK, warmupS: WARMUP_S, tasks: TASKS, order: ORDER.map(([, sys]) => sys), identity: "session_id + session_id_sign", targetRatio: TARGET_RATIO },
      host: {
        cpus: availableParallelism(),
        cpuModel: cpus()[0]?.model ?? null,
        loadStart: load0,
        cpuBusyBeforeStart: busy0,
        loadEnd: load1,
        kernel: execFileSync("uname", ["-r"]).toString().trim(),
        node: process.version,
        wrk: execFileSync("sh", ["-c", "wrk -v 2>&1 | head -1 || true"]).toString().trim(),
        qemuImg: execFileSync("qemu-img", ["--version"]).toString().split("\n")[0],
        note: "wrk and the server share the machine's CPUs",
      },
      durationSec: (Date.now() - started) / 1000,
      store: { tasks: TASKS, status: "closed", seedMs: seeded.ms, detailTaskId: detailId, systemDiskBytes: seeded.systemDiskBytes },
      agentStart: { emptyStoreMs: emptyStartMs, withTasksMs: a.startMs, reconcileMs, reconciled: rec ?? null },
      replies: Object.fromEntries(eps.map((e) => [e.key, { path: e.path, bytes: e.replyBytes, contentType: replies[e.path]!.type }])),
      results: table,
      findings: details,
      probes,
      agentProfile: profile ? { file: profFile, msByGroup: profile } : null,
      runs: Object.fromEntries(eps.map((e) => [e.key, e.runs])),
      warmups,
    };
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
    console.log(`wrote ${file.slice(REPO.length + 1)}`);
  }
}

await cleanup.runMain(main, log);
