/**
 * Network bench (issue 14): HTTP through a port forward to the demo guest's port 80, three ways:
 *
 *   batu  an agent started with `--network bridge` (bridge, dnsmasq, tap, its `inet batu` table);
 *         the VM made with custom_port tcp,18080:80
 *   hand  the least batu could do, made by hand: a bridge, a tap, ip_forward and one nftables table
 *         with one DNAT rule; the same guest booted with the QEMU argv batu gives it
 *   user  an agent started with `--network user` (QEMU's user-mode networking, slirp hostfwd)
 *
 *   npm run bench:net -- [--rounds 10] [--duration 1] [--connections 4] [--bulk-mib 16]
 *                        [--systems batu,hand,user] [--timeout 120] [--no-json]
 *
 * Everything runs in network namespaces the bench makes: a client namespace (wrk, curl, ssh) linked
 * by one veth pair to each system's own namespace (its agent or QEMU, bridge, nftables); nothing is
 * added to the root namespace, its uplink or its nftables. The loads, each `--duration` seconds,
 * systems shuffled within each load of each round:
 *   conn1  GET /index.html (131 bytes), 1 connection at a time
 *   connN  the same, `--connections` at a time
 *   bulk   GET /big.bin (`--bulk-mib` MiB, written into the guest's /www over SSH at setup), 1 at a time
 * The guest's busybox httpd answers every request with `Connection: close`, so every request is a
 * new TCP connection (a new conntrack entry, a new DNAT lookup): req/s is also connections/s, and no
 * keep-alive figure can be measured against this guest. Prints the medians, batu/hand and
 * user/hand, the CPU each request (or MB) cost in the guest's QEMU and on the host's side (the
 * QEMU's system time plus wrk: where bridging and NAT are paid), the run-to-run spread, and writes
 * bench/results/net-<date>.json. The login for SSH: the agents' VMs' password from their
 * database (read-only), the hand-made guest's from the fw_cfg file the bench gave it. Needs root,
 * `npm run build`, build/images/batu-demo.*, ip, nft, dnsmasq, wrk, curl, ssh and sshpass.
 *
 * Under TCG the guest's QEMU runs near 100 % of a CPU in every load: the guest (busybox httpd forks
 * per connection) sets the pace, and one 1-second run differs from the next by 10-35 % (CV) even
 * with one VM alone, so ratios within about ±15 % of 1 are noise; raise --rounds to narrow them.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { argvDiff, loadDemoImage } from "./lib/bare-qemu.js";
import { Cleanup } from "./lib/cleanup.js";
import { NsAgent } from "./lib/net-agent.js";
import { bootHandVm, handNetwork, HAND_SUBNET, stopHandVm } from "./lib/net-hand.js";
import { guestSsh, runLoad, stopLoad, waitHttp, type LoadResult } from "./lib/net-load.js";
import { NetnsSet, netnsProblem, runInput, type Netns } from "./lib/netns.js";
import { benchLog, cmdline, loadAvg, qemuPids } from "./lib/proc.js";
import { quantile, ratio, shuffle } from "./lib/stats.js";

const REPO = resolve(import.meta.dirname, "..");
const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "10" },
    duration: { type: "string", default: "1" },
    connections: { type: "string", default: "4" },
    "bulk-mib": { type: "string", default: "16" },
    systems: { type: "string", default: "batu,hand,user" },
    timeout: { type: "string", default: "120" },
    "no-json": { type: "boolean", default: false },
  },
});

type Sys = "batu" | "hand" | "user";
type Load = "conn1" | "connN" | "bulk";
const ROUNDS = Number(flags.rounds);
const DURATION = Number(flags.duration);
const CONNS = Number(flags.connections);
const BULK_MIB = Number(flags["bulk-mib"]);
const TIMEOUT_MS = Number(flags.timeout) * 1000;
const SYSTEMS = flags.systems.split(",").map((s) => s.trim()) as Sys[];
if (
  !(Number.isInteger(ROUNDS) && ROUNDS >= 1 && Number.isInteger(DURATION) && DURATION >= 1 && Number.isInteger(CONNS) && CONNS >= 1 &&
    Number.isInteger(BULK_MIB) && BULK_MIB >= 0 && TIMEOUT_MS > 0) ||
  !SYSTEMS.length || SYSTEMS.some((s) => !["batu", "hand", "user"].includes(s)) || new Set(SYSTEMS).size !== SYSTEMS.length
) {
  console.error("usage: net.ts [--rounds N≥1] [--duration SECONDS≥1] [--connections N≥1] [--bulk-mib MiB≥0 (0: no bulk load)] [--systems batu,hand,user] [--timeout SECONDS] [--no-json]");
  process.exit(2);
}
const LOADS: Load[] = BULK_MIB > 0 ? ["conn1", "connN", "bulk"] : ["conn1", "connN"];
const LOAD_LABEL: Record<Load, string> = {
  conn1: "GET /index.html, 1 connection: req/s",
  connN: `GET /index.html, ${CONNS} connections: req/s`,
  bulk: `GET /big.bin (${BULK_MIB} MiB), 1 connection: MB/s`,
};
const SYS_LABEL: Record<Sys, string> = { batu: "batu bridge", hand: "hand-made", user: "user-mode" };
/** Host port of the forward to the guest's port 80, for all three. */
const HOST_PORT = 18080;
const TARGET = 0.95;

const started = Date.now();
const log = benchLog(started);
const cleanup = new Cleanup();
cleanup.installSignalHandlers();

/** How the client reaches one system, and its guest's QEMU. */
interface Target {
  /** The system's namespace. */
  ns: Netns;
  /** Its address on the client's link. */
  addr: string;
  qemuPid: number;
  /** SSH to the guest: from which namespace, to which address and port. */
  ssh: { from: Netns; host: string; port: number; password: string };
  readyMs: number;
}

async function main(): Promise<void> {
  const problem = await netnsProblem();
  if (problem) throw new Error(problem);
  const root = mkdtempSync("/tmp/batu-bench-net-");
  cleanup.add("remove temp dir", () => rmSync(root, { recursive: true, force: true }));
  const others = await qemuPids();
  const load0 = await loadAvg();
  log(`temp dir ${root}; ${availableParallelism()} CPUs; load ${load0}; QEMU processes not ours running now: ${others.length}`);
  if (others.length) log("WARNING: other QEMU processes are running: figures will be noisier than usual");
  const demo = await loadDemoImage(join(REPO, "build/images"));

  // --- namespaces: a client, and one per system linked to it by a veth pair ----------------------
  const set = new NetnsSet();
  cleanup.add("delete the namespaces (and SIGKILL what still runs in them)", () => set.destroy());
  const client = await set.add("client");
  const nsOf = {} as Record<Sys, { ns: Netns; addr: string }>;
  for (const [i, sys] of (["batu", "hand", "user"] as const).entries()) {
    if (!SYSTEMS.includes(sys)) continue;
    const ns = await set.add(sys);
    const addr = `10.78.${i + 1}.1`;
    await set.link(client, `v${sys}`, `10.78.${i + 1}.2/24`, ns, "eth0", `${addr}/24`);
    // The client is the system's "uplink": batu finds its default route there.
    await ns.ip("route", "add", "default", "via", `10.78.${i + 1}.2`);
    nsOf[sys] = { ns, addr };
  }
  log(`namespaces ${set.id}: client + ${SYSTEMS.join(", ")}`);

  // --- the three systems, booted at once -------------------------------------------------------
  const targets = {} as Record<Sys, Target>;
  const forwards = [`tcp,${HOST_PORT}:80`];
  const boots: Promise<void>[] = [];
  /** Filled by the boots: what the argv check and the record need. */
  const made: { batuDataDir?: string; batuVmId?: string; handRunDir?: string; handArgv?: string[]; handRuleset?: string } = {};
  for (const sys of SYSTEMS) {
    const { ns, addr } = nsOf[sys];
    if (sys === "hand") {
      boots.push((async () => {
        made.handRuleset = await handNetwork(ns, [{ hostPort: HOST_PORT, guestPort: 80 }]);
        // A QEMU left by a failed boot dies with the namespace.
        const vm = await bootHandVm(ns, demo, join(root, "hand"), TIMEOUT_MS);
        cleanup.add("hand-made QEMU", () => stopHandVm(vm));
        made.handArgv = vm.argv;
        made.handRunDir = vm.runDir;
        targets.hand = { ns, addr, qemuPid: vm.qemuPid, ssh: { from: ns, host: HAND_SUBNET.guest, port: 22, password: vm.password }, readyMs: vm.readyMs };
      })());
    } else {
      boots.push((async () => {
        const agent = await NsAgent.start(ns, sys === "batu" ? "bridge" : "user", join(root, sys), sys === "batu" ? "127.0.0.1" : addr);
        cleanup.add(`${sys} agent and its VM`, () => agent.shutdown());
        const vm = await agent.createVm(forwards, TIMEOUT_MS);
        if (sys === "batu") {
          made.batuDataDir = agent.dataDir;
          made.batuVmId = vm.id;
        }
        targets[sys] = { ns, addr, qemuPid: vm.qemuPid, ssh: { from: client, host: addr, port: vm.sshPort, password: vm.password }, readyMs: vm.readyMs };
      })());
    }
  }
  const settled = await Promise.allSettled(boots);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  for (const sys of SYSTEMS) {
    await waitHttp(client, url(sys, "/index.html"), 30_000);
    log(`${SYS_LABEL[sys]}: guest ready ${(targets[sys].readyMs / 1000).toFixed(1)} s after its start; ${url(sys, "/")} answers from the client`);
  }

  // --- what runs: batu's QEMU argv against the hand-made one, the two rulesets -----------------------
  let argvCheck: string[] | null = null;
  let batuArgv: string[] | null = null;
  let batuRuleset: string | null = null;
  if (targets.batu) {
    batuArgv = await cmdline(targets.batu.qemuPid);
    batuRuleset = (await nsOf.batu.ns.exec(["nft", "list", "table", "inet", "batu"])).stdout;
    if (batuArgv && made.handArgv && made.batuDataDir && made.batuVmId && made.handRunDir) {
      const norm = (argv: string[], runDir: string) => argv.map((a) => a.replaceAll(runDir, "<run>").replace(/ifname=[^,]+/, "ifname=<tap>"));
      argvCheck = argvDiff(norm(batuArgv, join(made.batuDataDir, "vms", made.batuVmId)), norm(made.handArgv, made.handRunDir));
      log(argvCheck.length ? `hand-made QEMU argv differs from batu's:\n  ${argvCheck.join("\n  ")}` : "hand-made QEMU argv = batu's QEMU argv (names, paths, MAC, tap, ports aside)");
    }
  }

  // --- keep-alive: does the guest's httpd offer it? ---------------------------------------------
  const first = SYSTEMS[0]!;
  const head = await runInput([...client.wrap, "curl", "-s", "-D", "-", "-o", "/dev/null", "-m", "5", url(first, "/index.html")], { timeoutMs: 10_000 });
  const connectionClose = /^connection:\s*close/im.test(head.stdout);
  log(connectionClose
    ? "the guest's httpd answers `Connection: close`: every request below is a new TCP connection (no keep-alive figure possible)"
    : "the guest's httpd keeps connections alive: wrk reuses them");

  // --- the bulk file, written into each guest's /www over SSH ----------------------------------------
  if (BULK_MIB > 0) {
    await Promise.all(SYSTEMS.map(async (sys) => {
      const t = targets[sys];
      const out = await guestSsh(t.ssh.from, t.ssh, `dd if=/dev/zero of=/www/big.bin bs=1048576 count=${BULK_MIB} 2>/dev/null && wc -c < /www/big.bin`, 120_000);
      if (Number(out.trim()) !== BULK_MIB * 1048576) throw new Error(`${sys}: /www/big.bin is ${out.trim()} bytes`);
    }));
    log(`/www/big.bin (${BULK_MIB} MiB of zeros) written in each guest over SSH`);
  }

  // --- warm-up (not counted), then the rounds ---------------------------------------------------------
  for (const sys of SYSTEMS) {
    await runLoad(client, url(sys, "/index.html"), { connections: 1, durationS: 1 });
    if (BULK_MIB > 0) await runLoad(client, url(sys, "/big.bin"), { connections: 1, durationS: 1 });
  }
  log("warm-up done");
  cleanup.add("stop wrk", () => stopLoad());
  const results: Record<Sys, Record<Load, LoadResult[]>> = {} as never;
  for (const sys of SYSTEMS) results[sys] = { conn1: [], connN: [], bulk: [] };
  const orders: Record<string, Sys[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const load of LOADS) {
      const order = shuffle([...SYSTEMS]);
      orders[`${r + 1}/${load}`] = order;
      const parts: string[] = [];
      for (const sys of order) {
        const res = await runLoad(client, url(sys, load === "bulk" ? "/big.bin" : "/index.html"), {
          connections: load === "connN" ? CONNS : 1,
          durationS: DURATION,
          qemuPid: targets[sys].qemuPid,
        });
        if (res.non2xx || res.errors) log(`WARNING: ${sys} ${load}: ${res.non2xx} non-2xx answers, ${res.errors} socket errors`);
        results[sys][load].push(res);
        parts.push(`${sys} ${fig(load, res)}`);
      }
      log(`round ${r + 1}/${ROUNDS} ${load}: ${parts.join(", ")} ${load === "bulk" ? "MB/s" : "req/s"}`);
    }
  }

  // --- report ------------------------------------------------------------------------------------
  const med = (xs: number[]) => quantile(xs, 0.5);
  const figure = (sys: Sys, load: Load) => med(results[sys][load].map((x) => (load === "bulk" ? x.mbps : x.rps)));
  /**
   * Median CPU cost of one request (conn loads, µs) or one MB (bulk, ms): `part` "guest" is the
   * guest's QEMU in user mode (the emulated guest, and slirp), "host" is that QEMU in the kernel
   * plus wrk: the host's side of the path, where a forward's NAT and bridging are paid.
   */
  const cost = (sys: Sys, load: Load, part: "guest" | "host") =>
    med(results[sys][load].flatMap((x) => {
      if (x.cpu === null || !x.requests) return [];
      const s = part === "guest" ? x.cpu.qemuUserS : x.cpu.qemuSysS + x.cpu.wrkS;
      return [load === "bulk" ? (s * 1000) / (x.mbps * x.durationS) : (s * 1e6) / x.requests];
    }));
  /** a/b within each round (the two runs of a load are next to each other in time). */
  const perRound = (a: Sys, b: Sys, load: Load) => {
    const xa = results[a][load], xb = results[b][load];
    if (!xa.length || xa.length !== xb.length) return [];
    return xa.map((x, i) => (load === "bulk" ? x.mbps / xb[i]!.mbps : x.rps / xb[i]!.rps));
  };
  const paired = (a: Sys, b: Sys, load: Load) => med(perRound(a, b, load));
  const ratioOf = (a: Sys, b: Sys, load: Load) => {
    const x = SYSTEMS.includes(a) && SYSTEMS.includes(b) ? figure(a, load) : null;
    const y = SYSTEMS.includes(a) && SYSTEMS.includes(b) ? figure(b, load) : null;
    return x === null || y === null || y === 0 ? null : x / y;
  };
  const w = 44;
  const col = 13;
  const line = "─".repeat(w + col * 5);
  const f2 = (v: number | null | undefined, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? "–" : v.toFixed(d));
  const lines: string[] = [
    line,
    `${"median of the rounds".padEnd(w)}${SYSTEMS.map((s) => SYS_LABEL[s].padStart(col)).join("")}${"batu/hand".padStart(col)}${"user/hand".padStart(col)}`,
    line,
  ];
  for (const load of LOADS) {
    lines.push(`${LOAD_LABEL[load].padEnd(w)}${SYSTEMS.map((s) => f2(figure(s, load), load === "bulk" ? 1 : 0).padStart(col)).join("")}${f2(ratioOf("batu", "hand", load)).padStart(col)}${f2(ratioOf("user", "hand", load)).padStart(col)}`);
  }
  lines.push(line, "CPU per request (conn, µs) or per MB (bulk, ms); hand/batu: batu's efficiency");
  for (const part of ["guest", "host"] as const) {
    for (const load of LOADS) {
      const c = (sys: Sys) => cost(sys, load, part);
      const label = `  ${load}: ${part === "guest" ? "guest (QEMU user)" : "host side (QEMU sys + wrk)"}`;
      const eff = (a: Sys) => (SYSTEMS.includes(a) && SYSTEMS.includes("hand") ? ratio(c("hand"), c(a)) : null);
      lines.push(`${label.padEnd(w)}${SYSTEMS.map((s) => f2(c(s), load === "bulk" ? 2 : 0).padStart(col)).join("")}${f2(eff("batu")).padStart(col)}${f2(eff("user")).padStart(col)}`);
    }
  }
  lines.push(line, "details");
  for (const load of LOADS) {
    const lat = (s: Sys) => f2(med(results[s][load].map((x) => x.latencyMs.p50)), 1);
    lines.push(`${`  ${load}: latency p50 (ms)`.padEnd(w)}${SYSTEMS.map((s) => lat(s).padStart(col)).join("")}`);
    const p99 = (s: Sys) => f2(med(results[s][load].map((x) => x.latencyMs.p99)), 1);
    lines.push(`${`  ${load}: latency p99 (ms)`.padEnd(w)}${SYSTEMS.map((s) => p99(s).padStart(col)).join("")}`);
    const cv = (s: Sys) => {
      const xs = results[s][load].map((x) => (load === "bulk" ? x.mbps : x.rps));
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      return xs.length > 1 ? f2((Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) / mean) * 100, 0) : "–";
    };
    lines.push(`${`  ${load}: run-to-run spread (CV %)`.padEnd(w)}${SYSTEMS.map((s) => cv(s).padStart(col)).join("")}`);
    const cpu = (s: Sys) => f2(med(results[s][load].flatMap((x) => (x.qemuCpuPct === null ? [] : [x.qemuCpuPct]))), 0);
    lines.push(`${`  ${load}: guest's QEMU CPU (% of a CPU)`.padEnd(w)}${SYSTEMS.map((s) => cpu(s).padStart(col)).join("")}`);
  }
  lines.push(line, "targets");
  const targetsOut: Array<{ load: Load; label: string; value: number | null; limit: string; met: boolean | null }> = [];
  for (const load of LOADS) {
    const v = ratioOf("batu", "hand", load);
    const met = v === null ? null : v >= TARGET;
    targetsOut.push({ load, label: `batu/hand-made, ${LOAD_LABEL[load]} (medians)`, value: v, limit: `≥ ${TARGET}`, met });
    lines.push(`${`batu/hand-made, ${load} (medians)`.padEnd(w)}${f2(v, 3).padStart(col)}  ≥ ${TARGET}  ${met === null ? "n/a" : met ? "MET" : "NOT MET"}`);
  }
  lines.push(line);
  const pairedRatios: Record<string, number | null> = {};
  for (const load of LOADS) {
    pairedRatios[`batu_over_hand_${load}`] = SYSTEMS.includes("batu") && SYSTEMS.includes("hand") ? paired("batu", "hand", load) : null;
    pairedRatios[`user_over_hand_${load}`] = SYSTEMS.includes("user") && SYSTEMS.includes("hand") ? paired("user", "hand", load) : null;
  }
  console.log(`\n${lines.join("\n")}`);
  const spread = (a: Sys, load: Load) => {
    const xs = SYSTEMS.includes(a) && SYSTEMS.includes("hand") ? perRound(a, "hand", load) : [];
    return xs.length ? `${f2(pairedRatios[`${a}_over_hand_${load}`])} (${f2(Math.min(...xs))}–${f2(Math.max(...xs))})` : "–";
  };
  console.log(`per-round ratios, median (min–max): ${LOADS.map((l) => `${l} batu/hand ${spread("batu", l)}, user/hand ${spread("user", l)}`).join("; ")}`);
  console.log(
    `client → system over a veth pair between namespaces; the guest (1 vCPU, ${execFileSync("sh", ["-c", "test -e /dev/kvm && echo KVM || echo TCG"]).toString().trim()}) forks busybox httpd per connection: ` +
      `a guest QEMU near 100 % CPU means the guest, not the forward, sets the pace.`,
  );
  const durationSec = (Date.now() - started) / 1000;
  console.log(`total ${durationSec.toFixed(0)} s; load ${load0} → ${await loadAvg()}`);

  if (!flags["no-json"]) {
    const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
    const dir = join(REPO, "bench/results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `net-${stamp}.json`);
    const record = {
      date: new Date().toISOString(),
      command: ["npm run bench:net", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" "),
      config: { rounds: ROUNDS, durationS: DURATION, connections: CONNS, bulkMiB: BULK_MIB, systems: SYSTEMS, hostPort: HOST_PORT, vcpus: 1, memoryMiB: 256, image: "batu-demo.qcow2", keepAliveOffered: !connectionClose },
      host: {
        cpus: availableParallelism(),
        loadStart: load0,
        loadEnd: await loadAvg(),
        otherQemuProcessesAtStart: others.length,
        qemu: execFileSync("qemu-system-x86_64", ["--version"]).toString().split("\n")[0],
        nft: execFileSync("nft", ["--version"]).toString().trim(),
        wrk: (await runInput(["wrk", "-v"]).catch(() => ({ stdout: "" }))).stdout.split("\n")[0] ?? null,
        kernel: execFileSync("uname", ["-r"]).toString().trim(),
      },
      durationSec,
      guestReadyMs: Object.fromEntries(SYSTEMS.map((s) => [s, Math.round(targets[s].readyMs)])),
      orders,
      argv: { batu: batuArgv, hand: made.handArgv ?? null },
      argvDiffBatuVsHand: argvCheck,
      rulesets: { batu: batuRuleset, hand: made.handRuleset ?? null },
      medians: Object.fromEntries(SYSTEMS.map((s) => [s, Object.fromEntries(LOADS.map((l) => [l, figure(s, l)]))])),
      cpuCostMedians: Object.fromEntries(SYSTEMS.map((s) => [s, Object.fromEntries(LOADS.flatMap((l) => (["guest", "host"] as const).map((part) => [`${l}_${part}_${l === "bulk" ? "ms_per_mb" : "us_per_request"}`, cost(s, l, part)])))])),
      targets: targetsOut,
      pairedRatios,
      runs: results,
    };
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
    console.log(`wrote ${file.slice(REPO.length + 1)}`);
  }

  function url(sys: Sys, path: string): string {
    return `http://${nsOf[sys].addr}:${HOST_PORT}${path}`;
  }
}

function fig(load: Load, r: LoadResult): string {
  return load === "bulk" ? r.mbps.toFixed(1) : r.rps.toFixed(0);
}

await cleanup.runMain(main, log);
