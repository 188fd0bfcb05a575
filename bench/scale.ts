/**
 * Scale bench (no VMs): one real master agent, 1,000 simulated member hosts holding 50,000 VMs in all,
 * fed as production feeds a master: each member is recorded by the operator, agrees a session key and
 * heartbeats every interval through the real API (naming its TLS port and certificate, which the
 * master pins), and answers the master's signed `POST /slave/group/vms` over TLS with its VMs, checked
 * as a member checks it (bench/lib/scale-members.ts). A master keeps no member's VMs: the group-wide
 * list (`GET /common/vm/list?scope=group`) asks every member each time (src/group/group-vms.ts).
 *
 *   npm run bench:scale -- [--members 1000] [--vms-per-member 50] [--interval-ms 3000] [--list-every-ms 250]
 *                          [--list-seconds 20] [--vm-lists 20] [--cold-vm-lists 5] [--no-vm-pages] [--cli <dist/cli/main.js>] [--base-port 20000] [--no-json]
 *
 * Figures: `GET /master/group/list` p50/p99 with every member (and a page of 100), polled every
 * `--list-every-ms` while the members beat, and the master's CPU per call from a burst; the
 * group-wide VM list p50/p99 back to back (the master's connections to members kept alive) and after
 * more than the 2 s a kept connection may idle (every member connected anew), and a page of it; the
 * master's RSS and JS heap (its /metrics) after loading and after the runs. Each latency also as the
 * master handled it (its log's responseTime), free of the bench process's own delays. Agent: dist/cli/main.js
 * (`npm run build` first), 127.0.0.1 only. Writes bench/results/scale-<date>.json.
 */
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, release } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadTlsIdentity } from "../src/auth/tls-identity.js";
import { ApiAgent, procCpu } from "./lib/api-agent.js";
import { Cleanup } from "./lib/cleanup.js";
import { lat, type Lat } from "./lib/group-report.js";
import { joinAll, simMembers, SimGroup } from "./lib/group-sim.js";
import { masterHandling } from "./lib/group-masterlog.js";
import { benchLog, checkInterrupted, loadAvg, now, sleep } from "./lib/proc.js";
import { SimVmServers, simVms } from "./lib/scale-members.js";
import { masterMemory, timedGet, type MasterMemory } from "./lib/scale-probes.js";

const REPO = resolve(import.meta.dirname, "..");
const { values: flags } = parseArgs({
  options: {
    members: { type: "string", default: "1000" },
    "vms-per-member": { type: "string", default: "50" },
    "interval-ms": { type: "string", default: "3000" },
    "list-every-ms": { type: "string", default: "250" },
    "list-seconds": { type: "string", default: "20" },
    "vm-lists": { type: "string", default: "20" },
    "cold-vm-lists": { type: "string", default: "5" },
    "no-vm-pages": { type: "boolean", default: false },
    cli: { type: "string" },
    "base-port": { type: "string", default: "20000" },
    "no-json": { type: "boolean", default: false },
  },
});
const MEMBERS = Number(flags.members);
const VMS_PER_MEMBER = Number(flags["vms-per-member"]);
const INTERVAL_MS = Number(flags["interval-ms"]);
const LIST_EVERY_MS = Number(flags["list-every-ms"]);
const LIST_SECONDS = Number(flags["list-seconds"]);
const VM_LISTS = Number(flags["vm-lists"]);
const COLD_VM_LISTS = Number(flags["cold-vm-lists"]);
const BASE_PORT = Number(flags["base-port"]);
/** Pages and one node's VMs: --no-vm-pages for an agent without them (a run on an earlier commit). */
const VM_PAGES = !flags["no-vm-pages"];
/** Members' agent addresses (nothing listens there) from BASE_PORT, their TLS ports right after. */
const TLS_BASE_PORT = BASE_PORT + MEMBERS;
if (
  !(Number.isInteger(MEMBERS) && MEMBERS >= 1 && MEMBERS <= 5000 && Number.isInteger(VMS_PER_MEMBER) && VMS_PER_MEMBER >= 0 && VMS_PER_MEMBER <= 500 &&
    INTERVAL_MS >= 100 && LIST_EVERY_MS >= 10 && LIST_SECONDS >= 1 && VM_LISTS >= 2 && COLD_VM_LISTS >= 0 &&
    Number.isInteger(BASE_PORT) && BASE_PORT >= 1024 && TLS_BASE_PORT + MEMBERS <= 32768)
) {
  console.error("usage: scale.ts [--members 1..5000] [--vms-per-member 0..500] [--interval-ms ≥100] [--list-every-ms ≥10] [--list-seconds ≥1] [--vm-lists ≥2] [--cold-vm-lists ≥0] [--base-port P] [--no-json]");
  process.exit(2);
}
/** Longer than a kept connection to a member may idle (FORWARD_CONNECT_TIMEOUT_MS, 2 s): each cold list connects anew. */
const COLD_GAP_MS = 3_000;

const started = Date.now();
const log = benchLog(started);
const cleanup = new Cleanup();
cleanup.installSignalHandlers();

interface Series {
  label: string;
  latency: Lat;
  bytes: number;
  /** The master's CPU over a back-to-back series, per call (ms); null for a polled one (its heartbeats' CPU would count). */
  cpuMsPerCall: number | null;
  /** Members left out of a group-wide VM list as unreachable, over all its calls. */
  unreachable: number;
  /** The master's own handling times (its log's responseTime): free of the bench process's delays. */
  masterHandling: Lat;
}

/** `path` every `everyMs` (0: back to back) for `count` calls or until `untilMs`; checks each reply with `check`. */
async function series(
  master: ApiAgent,
  label: string,
  path: string | ((previous: Headers | null) => string),
  opts: { count?: number; untilMs?: number; everyMs: number },
  check: (json: any, headers: Headers) => number | void,
): Promise<Series & { ms: number[] }> {
  const ms: number[] = [];
  let bytes = 0;
  let unreachable = 0;
  let previous: Headers | null = null;
  const log0 = master.logBytes();
  const c0 = procCpu(master.pid);
  for (let tick = now(); (opts.count === undefined || ms.length < opts.count) && (opts.untilMs === undefined || now() < opts.untilMs); tick += opts.everyMs) {
    checkInterrupted();
    const r = await timedGet(master, typeof path === "string" ? path : path(previous));
    previous = r.headers;
    ms.push(r.ms);
    bytes = r.bytes.length;
    unreachable += check(JSON.parse(r.bytes.toString("utf8")), r.headers) ?? 0;
    const wait = tick + opts.everyMs - now();
    if (wait > 0) await sleep(wait);
  }
  const cpuMsPerCall = opts.everyMs === 0 ? ((procCpu(master.pid).self - c0.self) * 1000) / ms.length : null;
  // Request lines reach the log within 100 ms (docs/logging.md).
  await sleep(300);
  const route = `GET ${(typeof path === "string" ? path : path(null)).split("?")[0]}`;
  const handling = lat(masterHandling(master.logPath, log0, master.logBytes())[route]?.ms ?? []);
  const s = { label, latency: lat(ms), bytes, cpuMsPerCall, unreachable, masterHandling: handling, ms };
  log(`${label}: p50 ${s.latency.p50!.toFixed(1)} ms, p99 ${s.latency.p99!.toFixed(1)} ms (n=${ms.length}; the master's handling p50 ${handling.p50?.toFixed(1)} ms, p99 ${handling.p99?.toFixed(1)} ms), ${bytes} B${cpuMsPerCall === null ? "" : `, master CPU ${cpuMsPerCall.toFixed(1)} ms a call`}${unreachable ? `, ${unreachable} members left out as unreachable` : ""}`);
  return s;
}

async function main(): Promise<void> {
  await cryptoWaitReady();
  const root = mkdtempSync("/tmp/batu-bench-scale-");
  cleanup.add("remove temp dir", () => rmSync(root, { recursive: true, force: true }));
  const load0 = await loadAvg();
  log(`temp dir ${root}; ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}); load ${load0}`);

  // --- 1. the master, the members' TLS side, their joins and first heartbeats -----------------------
  const master = await ApiAgent.start(join(root, "master/conf"), join(root, "master/data"), join(root, "master.log"), [], ...(flags.cli ? [resolve(flags.cli)] : []));
  if (flags.cli) log(`master: ${resolve(flags.cli)}`);
  cleanup.add("stop the master", async () => {
    if (process.exitCode) console.error(`the master's log ends:\n${readFileSync(master.logPath, "utf8").split("\n").slice(-12).join("\n")}`);
    await master.stop();
  });
  const memStart = await masterMemory(master);
  log(`master pid ${master.pid} at ${master.url}, listening after ${master.startMs.toFixed(0)} ms; RSS ${mib(memStart.rssBytes)} MiB`);
  const adminToken = readFileSync(join(root, "master/conf/admin.token"), "utf8").trim();
  mkdirSync(join(root, "members-tls"));
  const identity = await loadTlsIdentity(join(root, "members-tls"), "bench-scale-members");
  const members = simMembers(MEMBERS, BASE_PORT).map((m) => ({ ...m, tls: { port: TLS_BASE_PORT + m.index, sha256: identity.sha256 } }));
  const sim = new SimGroup(master.url.replace(/^http:\/\//, ""), members, INTERVAL_MS, { kind: "session", masterNodeId: master.nodeId });
  const servers = await SimVmServers.start(
    identity,
    members.map((m) => ({ nodeId: m.nodeId, tlsPort: m.tls.port, vms: simVms(m.index, VMS_PER_MEMBER) })),
    master.nodeId,
    (nodeId) => sim.sessions.get(nodeId),
  );
  cleanup.add("stop the members' TLS servers", () => servers.close());
  log(`${MEMBERS} members serve TLS on 127.0.0.1:${TLS_BASE_PORT}..${TLS_BASE_PORT + MEMBERS - 1}, ${VMS_PER_MEMBER} VMs each (${MEMBERS * VMS_PER_MEMBER} in all)`);

  let t0 = now();
  const joinMs = await joinAll(master.url.replace(/^http:\/\//, ""), adminToken, members);
  const joinS = (now() - t0) / 1000;
  log(`${MEMBERS} members joined in ${joinS.toFixed(1)} s (p50 ${lat(joinMs).p50!.toFixed(2)} ms a join)`);
  cleanup.add("stop the heartbeats", () => sim.stop());
  t0 = now();
  sim.start();
  // Every member has agreed its session key and been pinned by its first beat's TLS endpoint.
  while (sim.sessions.size < MEMBERS || new Set(sim.samples.filter((s) => s.error === null).map((s) => s.member)).size < MEMBERS) {
    checkInterrupted();
    if (now() - t0 > 60_000) throw new Error(`after 60 s only ${sim.sessions.size} of ${MEMBERS} members hold a session key`);
    await sleep(200);
  }
  const firstBeatsS = (now() - t0) / 1000;
  log(`every member beat once (session key agreed, TLS pinned) within ${firstBeatsS.toFixed(1)} s; heartbeats go on every ${INTERVAL_MS} ms`);
  await sleep(INTERVAL_MS);
  const memLoaded = await masterMemory(master);
  log(`master after loading: RSS ${mib(memLoaded.rssBytes)} MiB, heap used ${mib(memLoaded.heapUsedBytes)} MiB of ${mib(memLoaded.heapTotalBytes)} MiB`);

  // --- 2. group/list with every member, while they beat ------------------------------------------------
  const allMembers = MEMBERS + 0; // the master lists its members, not itself
  const checkMembers = (want: number) => (json: any) => {
    if (json.member.length !== want) throw new Error(`group/list: ${json.member.length} members, want ${want}`);
  };
  const lists: Series[] = [];
  const polled = await series(master, `group/list (${allMembers} members, every ${LIST_EVERY_MS} ms)`, "/master/group/list", { untilMs: now() + LIST_SECONDS * 1000, everyMs: LIST_EVERY_MS }, checkMembers(allMembers));
  lists.push(polled);
  const page = Math.min(100, allMembers);
  lists.push(await series(master, `group/list?limit=${page} (every ${LIST_EVERY_MS} ms)`, `/master/group/list?limit=${page}`, { untilMs: now() + (LIST_SECONDS / 2) * 1000, everyMs: LIST_EVERY_MS }, checkMembers(page)));
  lists.push(await series(master, "group/list back to back (2 s)", "/master/group/list", { untilMs: now() + 2000, everyMs: 0 }, checkMembers(allMembers)));

  // --- 3. the group-wide VM list ----------------------------------------------------------------------
  const wantVms = MEMBERS * VMS_PER_MEMBER;
  /** Every member's VMs but those of the members it names unreachable (a member the master could not connect to in 2 s). */
  const checkVms = (want: number) => (json: any, headers: Headers) => {
    const unreachable = unreachableCount(headers);
    if (json.length !== want - unreachable * VMS_PER_MEMBER) throw new Error(`vm/list?scope=group: ${json.length} VMs with ${unreachable} members unreachable, want ${want}`);
    return unreachable;
  };
  const vmLists: Series[] = [];
  // The first call connects to every member: not counted among the back-to-back ones.
  const first = await timedGet(master, "/common/vm/list?scope=group");
  const firstUnreachable = unreachableCount(first.headers);
  log(`first group-wide VM list (connecting to every member): ${first.ms.toFixed(0)} ms, ${firstUnreachable} members left out as unreachable`);
  vmLists.push(await series(master, `vm/list?scope=group back to back (${wantVms} VMs)`, "/common/vm/list?scope=group", { count: VM_LISTS, everyMs: 0 }, checkVms(wantVms)));
  if (COLD_VM_LISTS > 0) {
    await sleep(COLD_GAP_MS);
    vmLists.push(await series(master, `vm/list?scope=group every ${COLD_GAP_MS / 1000} s (connections expired)`, "/common/vm/list?scope=group", { count: COLD_VM_LISTS, everyMs: COLD_GAP_MS }, checkVms(wantVms)));
  }
  // Pages of 100 in a row, each from the `x-batu-next` of the one before (from the start again after the last).
  const pagePath = (previous: Headers | null) => {
    const next = previous?.get("x-batu-next");
    return `/common/vm/list?scope=group&limit=100${next ? `&after=${next}` : ""}`;
  };
  const checkPage = (json: any, headers: Headers) => {
    const unreachable = unreachableCount(headers);
    if (json.length !== 100 && headers.get("x-batu-next")) throw new Error(`vm/list?scope=group&limit=100: ${json.length} VMs and a next page`);
    return unreachable;
  };
  if (VM_PAGES) {
    vmLists.push(await series(master, `vm/list?scope=group&limit=100 (pages in a row, every ${LIST_EVERY_MS} ms)`, pagePath, { count: VM_LISTS * 5, everyMs: LIST_EVERY_MS }, checkPage));
    const oneNode = members[Math.floor(MEMBERS / 2)]!.nodeId;
    vmLists.push(await series(master, `vm/list?scope=group&node_id=<a member> (every ${LIST_EVERY_MS} ms)`, `/common/vm/list?scope=group&node_id=${oneNode}`, { count: VM_LISTS * 5, everyMs: LIST_EVERY_MS }, checkVms(VMS_PER_MEMBER)));
  }
  const memAfter = await masterMemory(master);
  log(`master after the runs: RSS ${mib(memAfter.rssBytes)} MiB (peak ${mib(memAfter.rssPeakBytes)} MiB), heap used ${mib(memAfter.heapUsedBytes)} MiB of ${mib(memAfter.heapTotalBytes)} MiB`);
  const beats = lat(sim.samples.map((s) => s.ms));
  const beatErrors = sim.samples.filter((s) => s.error !== null).length;
  await sim.stop();
  log(`members answered ${servers.counts.answered} VM list calls, refused ${servers.counts.refused}; ${sim.samples.length} heartbeats (p99 ${beats.p99!.toFixed(1)} ms, ${beatErrors} errors)`);
  if (servers.counts.refused > 0) throw new Error("members refused some of the master's calls");

  // --- 4. report --------------------------------------------------------------------------------------
  const row = (s: Series) =>
    `${s.label.padEnd(64)} ${fmt(s.latency.p50)} ${fmt(s.latency.p99)} ${fmt(s.masterHandling.p50)} ${fmt(s.masterHandling.p99)} ${String(s.latency.n).padStart(5)} ${(s.bytes / 1024).toFixed(0).padStart(8)} ${fmt(s.cpuMsPerCall)}`;
  const memRow = (label: string, m: MasterMemory) => `${label.padEnd(28)} ${mib(m.rssBytes).padStart(8)} ${mib(m.heapUsedBytes).padStart(10)} ${mib(m.heapTotalBytes).padStart(11)}`;
  console.log(
    [
      "",
      `Scale: ${MEMBERS} member hosts, ${wantVms} VMs, heartbeats every ${INTERVAL_MS} ms (${((MEMBERS * 1000) / INTERVAL_MS).toFixed(0)}/s)`,
      `${"call (p50/p99: the bench's, then the master's handling)".padEnd(64)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"m p50".padStart(8)} ${"m p99".padStart(8)} ${"n".padStart(5)} ${"KiB".padStart(8)} ${"CPU ms".padStart(8)}`,
      ...lists.map(row),
      ...vmLists.map(row),
      "",
      `${"master memory".padEnd(28)} ${"RSS MiB".padStart(8)} ${"heap MiB".padStart(10)} ${"heap total".padStart(11)}`,
      memRow("started (no members)", memStart),
      memRow("loaded", memLoaded),
      memRow("after the runs", memAfter),
      `RSS peak ${mib(memAfter.rssPeakBytes)} MiB; heartbeats p50 ${fmt(beats.p50)} ms p99 ${fmt(beats.p99)} ms, ${beatErrors} errors of ${sim.samples.length}`,
      "",
    ].join("\n"),
  );
  const load1 = await loadAvg();
  log(`load ${load0} → ${load1}`);
  if (flags["no-json"]) return;
  const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
  const dir = join(REPO, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `scale-${stamp}.json`);
  const strip = ({ ms: _ms, ...s }: Series & { ms?: number[] }) => s;
  const record = {
    date: new Date().toISOString(),
    command: ["npm run bench:scale", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" "),
    config: {
      members: MEMBERS,
      vmsPerMember: VMS_PER_MEMBER,
      vms: wantVms,
      heartbeatIntervalMs: INTERVAL_MS,
      listEveryMs: LIST_EVERY_MS,
      listSeconds: LIST_SECONDS,
      vmLists: VM_LISTS,
      coldVmLists: COLD_VM_LISTS,
      coldGapMs: COLD_GAP_MS,
      masterCli: flags.cli ? resolve(flags.cli) : "dist/cli/main.js",
      members_: "recorded by the operator (seed 000 bearer join), then session-key heartbeats naming their TLS port and certificate (pinned by the master)",
      vmList: "GET /common/vm/list?scope=group: the master asks every member's POST /slave/group/vms over TLS (MAC with its session key); the members (one HTTPS server in the bench process, a port each) check it with ForwardVerifier and answer pre-serialized VMs",
    },
    host: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? null, loadStart: load0, loadEnd: load1, kernel: release(), node: process.version, note: "the master and the simulated members (this process) share the machine's CPUs" },
    durationSec: (Date.now() - started) / 1000,
    setup: { joinS, joinMs: lat(joinMs), firstBeatsS, firstVmList: { ms: first.ms, unreachable: firstUnreachable } },
    results: { groupList: lists.map(strip), vmList: vmLists.map(strip), memory: { started: memStart, loaded: memLoaded, after: memAfter }, heartbeats: { ...beats, errors: beatErrors }, members: servers.counts },
    samples: { groupListMs: polled.ms.map((x) => Math.round(x * 100) / 100) },
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${file.slice(REPO.length + 1)}`);
}

/** How many members a group-wide VM list left out: `x-batu-unreachable-count`, else the entries of `x-batu-unreachable`. */
function unreachableCount(headers: Headers): number {
  const count = headers.get("x-batu-unreachable-count");
  if (count !== null) return Number(count);
  const named = headers.get("x-batu-unreachable");
  return named ? (JSON.parse(named) as unknown[]).length : 0;
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const fmt = (x: number | null) => (x === null ? "–" : x.toFixed(1)).padStart(8);

await cleanup.runMain(main, log);
