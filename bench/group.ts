/**
 * Group bench: one master agent and N simulated members (light heartbeat clients in this process,
 * each with its own sr25519 node key and address, real join + signed heartbeats on loopback), plus
 * one real member agent for routed calls.
 *
 *   npm run bench:group -- [--members 500] [--interval-ms 3000] [--duration 30] [--list-every-ms 250]
 *                          [--calls 200] [--warmup-calls 20] [--base-port 20000] [--proof session|signature]
 *                          [--master-log debug|info] [--no-json]
 *                          [--max-heartbeats-per-s N]   (the master's pacing; default the agent's, 100)
 *                          [--master-cpu-prof DIR]   (diagnostic: V8 CPU profile of the master; slows it)
 *
 * Figures: master CPU % and heartbeat latency p50/p99, as the members see it and as the master
 * handled it (fastify's responseTime in its log), over a window of heartbeats alone and one with
 * `GET /master/group/list` polled (its p50/p99, reply size, and CPU per call from a burst); then
 * `tasks/<id>` of a task on the real member, sequentially, directly on the member and routed through
 * the master, and through a bare node:http relay to the member's TLS port (the floor of one hop),
 * interleaved call by call, with the members beating and again with them stopped: p50/p99 each way,
 * routed/direct, and what routing adds over the floor. Agents: dist/cli/main.js (`npm run build` first), on
 * 127.0.0.1 with temporary conf/data dirs. Prints the table; writes bench/results/group-<date>.json.
 */
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, release } from "node:os";
import { join, resolve } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { ApiAgent, procCpu } from "./lib/api-agent.js";
import { Cleanup } from "./lib/cleanup.js";
import { beatWindow, formatDetails, formatReport, lat, routedFigures, type BeatFloor, type BeatWindow, type ListFigures, type RoutedFigures } from "./lib/group-report.js";
import { masterHandling } from "./lib/group-masterlog.js";
import { measureRouted, signatureProbe, startRelay, startRoutedMember } from "./lib/group-routed.js";
import { joinAll, simMembers, SimGroup } from "./lib/group-sim.js";
import { benchLog, checkInterrupted, loadAvg, now, sleep } from "./lib/proc.js";
import { BareHttp } from "./lib/bare-http.js";
import { DEFAULT_MAX_HEARTBEATS_PER_S, PACE_JITTER, pacedIntervalMs } from "../src/group/beat-pacing.js";

const REPO = resolve(import.meta.dirname, "..");
const { values: flags } = parseArgs({
  options: {
    members: { type: "string", default: "500" },
    "interval-ms": { type: "string", default: "3000" },
    duration: { type: "string", default: "30" },
    "list-every-ms": { type: "string", default: "250" },
    calls: { type: "string", default: "200" },
    "warmup-calls": { type: "string", default: "20" },
    "base-port": { type: "string", default: "20000" },
    "no-json": { type: "boolean", default: false },
    proof: { type: "string", default: "session" },
    "master-log": { type: "string", default: "debug" },
    "master-cpu-prof": { type: "string" },
    "max-heartbeats-per-s": { type: "string" },
  },
});
/**
 * The master's log level: debug (default) logs each heartbeat, which is how the bench reads the
 * master's handling times; info, the agent's default, logs none, so its CPU figures are production's
 * (the handling columns are then empty).
 */
const MASTER_LOG = flags["master-log"];
if (MASTER_LOG !== "debug" && MASTER_LOG !== "info") {
  console.error("--master-log: debug or info");
  process.exit(2);
}
/** How the simulated members prove heartbeats: a session key's MAC (what agents do) or a node-key signature (the first protocol). */
const PROOF = flags.proof;
if (PROOF !== "session" && PROOF !== "signature") {
  console.error("--proof: session or signature");
  process.exit(2);
}
const MEMBERS = Number(flags.members);
const INTERVAL_MS = Number(flags["interval-ms"]);
const DURATION_S = Number(flags.duration);
const LIST_EVERY_MS = Number(flags["list-every-ms"]);
const CALLS = Number(flags.calls);
const WARMUP_CALLS = Number(flags["warmup-calls"]);
const BASE_PORT = Number(flags["base-port"]);
if (
  !(Number.isInteger(MEMBERS) && MEMBERS >= 1 && MEMBERS <= 5000 && INTERVAL_MS >= 100 && DURATION_S >= 1 && LIST_EVERY_MS >= 10 &&
    CALLS >= 2 && WARMUP_CALLS >= 0 && Number.isInteger(BASE_PORT) && BASE_PORT >= 1024 && BASE_PORT + MEMBERS <= 32768)
) {
  console.error("usage: group.ts [--members 1..5000] [--interval-ms ≥100] [--duration S≥1] [--list-every-ms ≥10] [--calls ≥2] [--warmup-calls ≥0] [--base-port P] [--no-json]");
  process.exit(2);
}

const started = Date.now();
const log = benchLog(started);
const cleanup = new Cleanup();
cleanup.installSignalHandlers();

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** All CPUs together (/proc/stat), seconds: busy and total. */
function machineCpu(): { busyS: number; totalS: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busyS: (total - f[3]! - f[4]!) / CLK_TCK, totalS: total / CLK_TCK };
}

/** Share of all CPUs busy over `ms`, before the bench starts anything: others' load. */
async function machineBusy(ms: number): Promise<number> {
  const a = machineCpu();
  await sleep(ms);
  const b = machineCpu();
  return (b.busyS - a.busyS) / (b.totalS - a.totalS);
}

/** `GET /master/group/list` every `everyMs` until `untilMs` (now() time); ms and the last reply. */
async function pollList(master: ApiAgent, everyMs: number, untilMs: number): Promise<{ ms: number[]; bytes: number; last: any }> {
  const ms: number[] = [];
  let bytes = 0;
  let last: Buffer | null = null;
  for (let tick = now(); now() < untilMs; tick += everyMs) {
    checkInterrupted();
    const t0 = now();
    const res = await fetch(`${master.url}/master/group/list`, { headers: { authorization: `Bearer ${master.token}` } });
    const body = Buffer.from(await res.arrayBuffer());
    ms.push(now() - t0);
    if (res.status !== 200) throw new Error(`group/list: HTTP ${res.status}: ${body.toString().slice(0, 300)}`);
    bytes = body.length;
    last = body;
    const wait = tick + everyMs - now();
    if (wait > 0) await sleep(wait);
  }
  return { ms, bytes, last: last ? JSON.parse(last.toString("utf8")) : null };
}

/**
 * The floor under a heartbeat: the same members' beats (same bytes, same rate) to a bare node:http
 * server and to a bare Fastify with batu's logging (heartbeats quiet, as batu logs them), each
 * answering `{"message":"ok"}` and the master's pacing (`next_beat_ms`, without its jitter) and doing
 * nothing else, for `min(duration, 10)` s after a warm-up each. Their CPU per beat is what any server
 * pays for the transport (and Fastify) alone, at the same rate (a slower rate costs more per beat:
 * each one wakes an idle process). The beats go back to the master afterwards.
 */
async function beatFloors(root: string, sim: SimGroup, masterAddress: string, pacedMs: number, warmupMs: number): Promise<BeatFloor[]> {
  const floors: BeatFloor[] = [];
  const reply = pacedMs > INTERVAL_MS ? { message: "ok", next_beat_ms: pacedMs } : { message: "ok" };
  const ok = { type: "application/json; charset=utf-8", bytes: Buffer.from(JSON.stringify(reply)) };
  const seconds = Math.min(DURATION_S, 10);
  for (const kind of ["node:http", "fastify"] as const) {
    const server = await BareHttp.start(join(root, `beat-floor-${kind.replace(":", "-")}.json`), { "/master/group/heartbeat": ok }, kind, {
      repo: REPO,
      logPath: join(root, "beat-floor.log"),
      quietLog: true,
    });
    cleanup.add(`stop the ${kind} heartbeat floor`, () => server.stop());
    await sim.stop();
    sim.retarget(server.url.replace(/^http:\/\//, ""));
    sim.start();
    await sleep(warmupMs);
    checkInterrupted();
    const c0 = procCpu(server.pid);
    const from = now();
    await sleep(seconds * 1000);
    const end = now();
    const cpuS = procCpu(server.pid).self - c0.self;
    const beats = sim.between(from, end);
    const good = beats.filter((b) => b.error === null);
    const floor: BeatFloor = { kind, seconds: (end - from) / 1000, beats: good.length, errors: beats.length - good.length, cpuPct: (cpuS / ((end - from) / 1000)) * 100, cpuMsPerBeat: (cpuS * 1000) / good.length, latency: lat(good.map((b) => b.ms)) };
    floors.push(floor);
    log(`heartbeat floor, bare ${kind}: ${floor.beats} beats (${floor.errors} errors), ${floor.cpuPct.toFixed(1)} % of one CPU, ${floor.cpuMsPerBeat.toFixed(3)} ms CPU per beat, p50 ${floor.latency.p50?.toFixed(2)} ms`);
    await sim.stop();
    await server.stop();
  }
  sim.retarget(masterAddress);
  sim.start();
  await sleep(warmupMs);
  return floors;
}

async function main(): Promise<void> {
  await cryptoWaitReady();
  const root = mkdtempSync("/tmp/batu-bench-group-");
  cleanup.add("remove temp dir", () => rmSync(root, { recursive: true, force: true }));
  const load0 = await loadAvg();
  const busy0 = await machineBusy(2000);
  log(`temp dir ${root}; ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}); load ${load0}; CPUs ${(busy0 * 100).toFixed(0)} % busy before the bench`);
  if (busy0 > 0.1) log("WARNING: other processes keep the CPUs busy: figures will be higher and noisier than on an idle machine");

  // --- 1. the master, the simulated members' joins, the real member ----------------------------------
  // The master logs heartbeats at debug only; its per-request lines are how the bench reads handling times.
  process.env.BATU_LOG_LEVEL = MASTER_LOG;
  const prof = flags["master-cpu-prof"];
  const pacing = flags["max-heartbeats-per-s"];
  const master = await ApiAgent.start(
    join(root, "master/conf"),
    join(root, "master/data"),
    join(root, "master.log"),
    prof ? ["--cpu-prof", `--cpu-prof-dir=${resolve(prof)}`] : [],
    undefined,
    pacing ? ["--max-heartbeats-per-s", pacing] : [],
  );
  if (prof) log(`WARNING: the master runs under --cpu-prof (profile written to ${prof} at its exit): its figures are not comparable`);
  cleanup.add("stop the master", () => master.stop());
  const masterAddress = master.url.replace(/^http:\/\//, "");
  const joinToken = readFileSync(join(root, "master/conf/join.token"), "utf8").trim();
  // The simulated members are recorded by the operator (they have no agent to prove a node key with).
  const adminToken = readFileSync(join(root, "master/conf/admin.token"), "utf8").trim();
  log(`master pid ${master.pid} at ${master.url} (node ${master.nodeId.slice(0, 12)}…), listening after ${master.startMs.toFixed(0)} ms`);

  const members = simMembers(MEMBERS, BASE_PORT);
  const t0 = now();
  const joinMs = await joinAll(masterAddress, adminToken, members);
  log(`${MEMBERS} simulated members joined in ${((now() - t0) / 1000).toFixed(1)} s (p50 ${lat(joinMs).p50!.toFixed(2)} ms per join)`);

  const member = await startRoutedMember({
    root,
    master,
    masterJoinToken: joinToken,
    baseImage: join(REPO, "build/images/batu-demo.qcow2"),
    onAgent: (a) => void cleanup.add(`stop the member agent ${a.pid}`, () => a.stop()),
  });
  log(`member agent pid ${member.agent.pid} at ${member.agent.url} (node ${member.agent.nodeId.slice(0, 12)}…) joined in ${member.setupMs.join.toFixed(0)} ms; task ${member.taskId} of ${member.renter}`);

  // --- 2. the master's idle CPU; heartbeats: a warm-up interval, then the windows -----------------------
  const idleS = Math.min(5, DURATION_S);
  const i0 = procCpu(master.pid);
  await sleep(idleS * 1000);
  const masterIdleCpuPct = ((procCpu(master.pid).self - i0.self) / idleS) * 100;
  log(`master idle (only the real member beating): ${masterIdleCpuPct.toFixed(1)} % of one CPU over ${idleS} s`);
  log(`heartbeats proven by ${PROOF === "session" ? "session-key MACs (each member agrees its key at its first beat)" : "node-key signatures (sr25519)"}`);
  const sim = new SimGroup(masterAddress, members, INTERVAL_MS, PROOF === "session" ? { kind: "session", masterNodeId: master.nodeId } : { kind: "signature" });
  cleanup.add("stop the simulated members", () => sim.stop());
  sim.start();
  // The master paces a large group (beat-pacing.ts): members wait up to 1.25× the paced period after
  // their first beat; the warm-up lets every member's paced wait begin before a window opens.
  const pacedMs = pacedIntervalMs(MEMBERS + 1, Number(pacing ?? DEFAULT_MAX_HEARTBEATS_PER_S));
  const warmupMs = INTERVAL_MS + (pacedMs > INTERVAL_MS ? Math.round(pacedMs * (1 + PACE_JITTER)) : 0) + 1000;
  log(
    `heartbeats started: ${MEMBERS} members every ${INTERVAL_MS} ms (${((MEMBERS * 1000) / INTERVAL_MS).toFixed(0)}/s)` +
      `${pacedMs > INTERVAL_MS ? `, paced by the master to every ${pacedMs} ms ± ${PACE_JITTER * 100} % (${((MEMBERS * 1000) / pacedMs).toFixed(0)}/s)` : ""}; warm-up ${warmupMs} ms`,
  );
  await sleep(warmupMs);
  checkInterrupted();

  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const windows: BeatWindow[] = [];
  let list: ListFigures | null = null;
  let listMs: number[] = [];
  for (const label of ["heartbeats only", "with group/list polled"] as const) {
    const m0 = procCpu(master.pid);
    const b0 = procCpu("self");
    const r0 = procCpu(member.agent.pid);
    const c0 = machineCpu();
    const log0 = master.logBytes();
    loop.reset();
    const from = now();
    const to = from + DURATION_S * 1000;
    let polled: Awaited<ReturnType<typeof pollList>> | null = null;
    if (label === "heartbeats only") await sleep(to - now());
    else polled = await pollList(master, LIST_EVERY_MS, to);
    const end = now();
    const [m1, b1, r1, c1, log1, loopP99] = [procCpu(master.pid), procCpu("self"), procCpu(member.agent.pid), machineCpu(), master.logBytes(), loop.percentile(99) / 1e6];
    checkInterrupted();
    const handling = masterHandling(master.logPath, log0, log1);
    const w = beatWindow(label, sim.between(from, end), MEMBERS, {
      seconds: (end - from) / 1000,
      masterCpuS: m1.self - m0.self,
      masterIdleCpuPct,
      benchCpuS: b1.self - b0.self,
      othersCpuS: c1.busyS - c0.busyS - (m1.self - m0.self) - (b1.self - b0.self) - (r1.self - r0.self),
      loopDelayP99Ms: loopP99,
      masterLogBytes: log1 - log0,
      handlingMs: handling["POST /master/group/heartbeat"]?.ms ?? [],
    });
    windows.push(w);
    log(`${label}: heartbeat p50 ${w.latency.p50?.toFixed(2)} ms, p99 ${w.latency.p99?.toFixed(2)} ms, ${w.errors} errors; master CPU ${w.masterCpuPct.toFixed(1)} %`);
    if (polled) {
      const states: Record<string, number> = {};
      for (const m of polled.last.member as Array<{ state: string }>) states[m.state] = (states[m.state] ?? 0) + 1;
      listMs = polled.ms;
      list = { latency: lat(polled.ms), masterHandling: lat(handling["GET /master/group/list"]?.ms ?? []), everyMs: LIST_EVERY_MS, replyBytes: polled.bytes, cpuMsPerCall: NaN, members: polled.last.member.length, states };
      log(`group/list: ${list.members} members, ${polled.bytes} B; p50 ${list.latency.p50?.toFixed(2)} ms, p99 ${list.latency.p99?.toFixed(2)} ms (n=${list.latency.n})`);
    }
  }
  loop.disable();
  if (!list) throw new Error("no group/list samples");
  const floors = await beatFloors(root, sim, masterAddress, pacedMs, warmupMs);

  if (list.members !== MEMBERS + 1) throw new Error(`group/list has ${list.members} members, want ${MEMBERS + 1}`);

  // --- 3. tasks/<id>: direct vs routed, with the members beating, then with them stopped ---------------
  const routed: RoutedFigures[] = [];
  const relay = await startRelay(member.agent.tlsUrl);
  cleanup.add("stop the relay", () => relay.stop());
  const loaded = await measureRouted(master, member, relay.url, CALLS, WARMUP_CALLS);
  routed.push(routedFigures(`${MEMBERS} members beating`, loaded));
  log(`tasks/<id> with ${MEMBERS} members beating: direct p50 ${routed[0]!.direct.p50!.toFixed(2)} ms, routed p50 ${routed[0]!.routed.p50!.toFixed(2)} ms`);
  await sim.stop();
  const simSamples = sim.samples.length;
  await sleep(1000);
  const quiet = await measureRouted(master, member, relay.url, CALLS, WARMUP_CALLS);
  routed.push(routedFigures("members stopped", quiet));
  log(`tasks/<id> with the members stopped: direct p50 ${routed[1]!.direct.p50!.toFixed(2)} ms, routed p50 ${routed[1]!.routed.p50!.toFixed(2)} ms`);
  // The master's CPU per list call, alone: the windows' difference drowns in the shared machine's noise.
  const l0 = procCpu(master.pid);
  const burst = await pollList(master, 0, now() + 2000);
  list.cpuMsPerCall = ((procCpu(master.pid).self - l0.self) * 1000) / burst.ms.length;
  log(`group/list alone, ${burst.ms.length} calls in a row: ${list.cpuMsPerCall.toFixed(2)} ms master CPU per call`);

  // --- 4. report --------------------------------------------------------------------------------------
  const joinLat = lat(joinMs);
  const signature = signatureProbe();
  log(`sr25519 in this process: sign ${signature.signUs.toFixed(0)} µs, verify ${signature.verifyUs.toFixed(0)} µs`);
  const details = formatDetails({ windows, floors, list, routed, cpus: availableParallelism(), join: joinLat, signature });
  console.log(`\n${formatReport({ members: MEMBERS, intervalMs: INTERVAL_MS, pacedMs, windows, floors, list, routed })}\n${details.join("\n")}`);
  const load1 = await loadAvg();
  log(`load ${load0} → ${load1}`);
  if (flags["no-json"]) return;
  const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
  const dir = join(REPO, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `group-${stamp}.json`);
  const round = (xs: number[]) => xs.map((x) => Math.round(x * 100) / 100);
  const record = {
    date: new Date().toISOString(),
    command: ["npm run bench:group", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" "),
    config: {
      members: MEMBERS,
      proof: PROOF,
      heartbeatIntervalMs: INTERVAL_MS,
      maxHeartbeatsPerS: Number(pacing ?? DEFAULT_MAX_HEARTBEATS_PER_S),
      pacedIntervalMs: pacedMs,
      windowS: DURATION_S,
      warmupMs,
      listEveryMs: LIST_EVERY_MS,
      masterLog: MASTER_LOG,
      routedCalls: CALLS,
      routedWarmupCalls: WARMUP_CALLS,
      memberAddresses: `127.0.0.1:${BASE_PORT}..${BASE_PORT + MEMBERS - 1} (nothing listens there)`,
      join: "seed 000 bearer join recorded by the operator (HostClient.recordJoin with the admin token: a join token alone names no node id); the real member joins with batu's proofs of the join token and its node key (POST /slave/group/join)",
      heartbeat: "signHeartbeat + HostClient.heartbeat per beat, as HeartbeatSender; first beats spread evenly over one interval",
      connections: "the simulated members share this process's fetch keep-alive pool (real members hold one connection each)",
      identity: "session_id + session_id_sign (the master's session for routed calls, the member's for direct ones)",
      order: "per call pair: direct, then routed",
    },
    host: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? null,
      loadStart: load0,
      cpuBusyBeforeStart: busy0,
      loadEnd: load1,
      kernel: release(),
      node: process.version,
      note: "the master, the member agent and the simulated members (this process) share the machine's CPUs",
    },
    durationSec: (Date.now() - started) / 1000,
    setup: { masterStartMs: master.startMs, simJoinMs: joinLat, member: member.setupMs, taskId: member.taskId, renter: member.renter },
    results: { heartbeat: windows, heartbeatFloors: floors, list, routed, signature },
    findings: details,
    samples: {
      listMs: round(listMs),
      routedMs: {
        loaded: { direct: round(loaded.direct), routed: round(loaded.routed), relayed: round(loaded.relayed) },
        quiet: { direct: round(quiet.direct), routed: round(quiet.routed), relayed: round(quiet.relayed) },
      },
      heartbeatsSent: simSamples,
    },
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${file.slice(REPO.length + 1)}`);
}

await cleanup.runMain(main, log);
