/**
 * VM lifecycle bench: batu vs the same guest started by hand (bare QEMU) vs libvirt.
 *
 *   npm run bench:vm -- [--runs 10] [--concurrent 5] [--systems batu,qemu,libvirt] [--timeout 120]
 *                       [--api-poll-ms 50] [--libvirt-defaults] [--no-json]
 *
 * Each system: one warm-up VM (not counted), `--runs` VMs one after another (create, wait until
 * ready, delete; the order of the three systems is shuffled every round), then `--concurrent` VMs
 * created at once (all kept until all are ready, then deleted; systems in shuffled order).
 * "Ready" is BATU-READY in the VM's serial log, tailed every 10 ms, for all three systems.
 * Prints the table and writes bench/results/vm-lifecycle-<date>.json. Needs root, `npm run build`,
 * build/images/batu-demo.*; installs libvirt with apt when it is missing.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BareQemu, argvDiff, loadDemoImage } from "./lib/bare-qemu.js";
import { BatuAgent, type Booted } from "./lib/batu.js";
import { Cleanup } from "./lib/cleanup.js";
import { Libvirt, ensureLibvirtInstalled, virsh } from "./lib/libvirt.js";
import { benchLog, cmdline, loadAvg, qemuPids, stopPid } from "./lib/proc.js";
import { checks, emptySamples, formatReport, relativeSamples, summarizeAll, targets, type System } from "./lib/report.js";
import { shuffle } from "./lib/stats.js";

const REPO = resolve(import.meta.dirname, "..");
const { values: flags } = parseArgs({
  options: {
    runs: { type: "string", default: "10" },
    concurrent: { type: "string", default: "5" },
    systems: { type: "string", default: "batu,qemu,libvirt" },
    timeout: { type: "string", default: "120" },
    "api-poll-ms": { type: "string", default: "50" },
    "libvirt-defaults": { type: "boolean", default: false },
    "no-json": { type: "boolean", default: false },
  },
});
const RUNS = Number(flags.runs);
const CONCURRENT = Number(flags.concurrent);
const TIMEOUT_MS = Number(flags.timeout) * 1000;
const SYSTEMS = flags.systems.split(",").map((s) => s.trim()) as System[];
if (!(RUNS >= 1 && CONCURRENT >= 0 && TIMEOUT_MS > 0) || SYSTEMS.some((s) => !["batu", "qemu", "libvirt"].includes(s))) {
  console.error("usage: vm-lifecycle.ts [--runs N≥1] [--concurrent N≥0] [--systems batu,qemu,libvirt] [--timeout SECONDS] [--api-poll-ms MS] [--libvirt-defaults] [--no-json]");
  process.exit(2);
}

const started = Date.now();
const log = benchLog(started);
const cleanup = new Cleanup();
cleanup.installSignalHandlers();
const samples = emptySamples();

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root (QEMU, libvirt, /dev/kvm)");
  const root = mkdtempSync("/tmp/batu-bench-");
  chmodSync(root, 0o755); // libvirt's qemu user must reach its files below
  cleanup.add("remove temp dir", () => rmSync(root, { recursive: true, force: true }));
  cleanup.add("sweep QEMU processes under the temp dir", async () => {
    for (const pid of await qemuPids()) if ((await cmdline(pid))?.join(" ").includes(root)) await stopPid(pid, root);
  });
  const others = await qemuPids();
  const load0 = await loadAvg();
  log(`temp dir ${root}; ${availableParallelism()} CPUs; load ${load0}; QEMU processes not ours running now: ${others.length}`);
  if (others.length) log("WARNING: other QEMU processes are running: figures will be noisier than usual");
  const demo = await loadDemoImage(join(REPO, "build/images"));

  // --- bring the three systems up ------------------------------------------------------------
  let installSecs = 0;
  let lv: Libvirt | null = null;
  let libvirtVersion: string | null = null;
  if (SYSTEMS.includes("libvirt")) {
    installSecs = await ensureLibvirtInstalled(log);
    if (installSecs) log(`libvirt installed in ${installSecs.toFixed(0)} s`);
    lv = await Libvirt.start(root, demo, cleanup, log, !flags["libvirt-defaults"]);
    libvirtVersion = (await virsh("version")).stdout.match(/library: libvirt ([\d.]+)/)?.[1] ?? null;
    log(`libvirt ${libvirtVersion ?? "?"} ready`);
  }
  let agent: BatuAgent | null = null;
  if (SYSTEMS.includes("batu")) {
    const a = (agent = await BatuAgent.start(join(root, "batu")));
    cleanup.add("batu agent and its VMs", () => a.shutdown());
    a.apiPollMs = Number(flags["api-poll-ms"]);
    log(`batu agent pid ${a.pid} at ${a.url}`);
  }
  const bare = new BareQemu(join(root, "bare"), demo);

  const boot: Record<System, () => Promise<Booted<any>>> = {
    batu: () => agent!.boot({ timeoutMs: TIMEOUT_MS }),
    qemu: () => bare.boot({ timeoutMs: TIMEOUT_MS }),
    libvirt: () => lv!.boot({ timeoutMs: TIMEOUT_MS }),
  };

  // --- warm-up: one VM each, not counted; checks the bare argv is batu's -------------------------
  const argv: Record<string, string[] | null> = { batu: null, qemu: null, libvirt: null };
  let argvCheck: string[] | null = null;
  for (const sys of SYSTEMS) {
    const b = sys === "qemu" ? await bare.boot({ timeoutMs: TIMEOUT_MS, onArgv: (a) => (argv.qemu = ["qemu-system-x86_64", ...a]) }) : await boot[sys]();
    if (sys === "batu") argv.batu = await cmdline(agent!.qemuPid(b.sample.id)!);
    if (sys === "libvirt") argv.libvirt = await lv!.qemuArgv(b.sample.name);
    await b.destroy();
    log(`warm-up ${sys}: ready in ${((b.sample.readySerial ?? b.sample.ready) - b.sample.t0).toFixed(0)} ms`);
  }
  if (argv.batu && argv.qemu) {
    argvCheck = argvDiff(argv.batu, argv.qemu);
    log(argvCheck.length ? `bare QEMU argv differs from batu's:\n  ${argvCheck.join("\n  ")}` : "bare QEMU argv = batu's QEMU argv (names, paths, MAC, ports aside)");
  }

  // --- sequential: RUNS rounds, systems shuffled each round ---------------------------------------
  const orders: System[][] = [];
  for (let i = 0; i < RUNS; i++) {
    const order = shuffle([...SYSTEMS]);
    orders.push(order);
    const parts: string[] = [];
    for (const sys of order) {
      const b = await boot[sys]();
      samples.teardownMs[sys].push(await b.destroy());
      (samples[sys].sequential as unknown[]).push(b.sample);
      parts.push(`${sys} ${(((b.sample.readySerial ?? b.sample.ready) - b.sample.t0) / 1000).toFixed(2)}`);
    }
    log(`round ${i + 1}/${RUNS}: ${parts.join(", ")} s`);
  }

  // --- concurrent: CONCURRENT VMs at once per system, all kept until all are ready -----------------
  const concurrentOrder = CONCURRENT ? shuffle([...SYSTEMS]) : [];
  for (const sys of concurrentOrder) {
    const settled = await Promise.allSettled(Array.from({ length: CONCURRENT }, () => boot[sys]()));
    const ok = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    for (const t of await Promise.all(ok.map((b) => b.destroy()))) samples.teardownMs[sys].push(t);
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    (samples[sys].concurrent as unknown[]).push(...ok.map((b) => b.sample));
    const last = Math.max(...ok.map((b) => (b.sample.readySerial ?? b.sample.ready) - b.sample.t0));
    log(`${CONCURRENT} at once, ${sys}: last ready after ${(last / 1000).toFixed(2)} s`);
  }

  // --- report ----------------------------------------------------------------------------------
  const sum = summarizeAll(samples);
  const tg = targets(sum);
  const durationSec = (Date.now() - started) / 1000;
  const report = formatReport(sum, tg, { sequential: RUNS, concurrent: CONCURRENT });
  const chk = checks(samples);
  console.log(`\n${report}\n${chk.lines.join("\n")}`);
  console.log(
    `batu create→ready: BATU-READY in the VM's serial log (10 ms tail); the list's ready:true is in "details". ` +
      `Baselines are timed from their overlay's qemu-img create, as batu's create includes it.`,
  );
  console.log(`total ${durationSec.toFixed(0)} s (libvirt install ${installSecs.toFixed(0)} s of it); load ${load0} → ${await loadAvg()}`);
  if (!flags["no-json"]) {
    const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
    const dir = join(REPO, "bench/results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `vm-lifecycle-${stamp}.json`);
    const record = {
      date: new Date().toISOString(),
      command: ["npm run bench:vm", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" "),
      config: { libvirtDomain: flags["libvirt-defaults"] ? "libvirt defaults" : "tuned like batu's QEMU", runs: RUNS, concurrent: CONCURRENT, systems: SYSTEMS, vcpus: 1, memoryMiB: 256, image: "batu-demo.qcow2", readyPollMs: 10, apiPollMs: Number(flags["api-poll-ms"]) },
      host: {
        cpus: availableParallelism(),
        loadStart: load0,
        loadEnd: await loadAvg(),
        otherQemuProcessesAtStart: others.length,
        qemu: execFileSync("qemu-system-x86_64", ["--version"]).toString().split("\n")[0],
        libvirt: libvirtVersion,
        kernel: execFileSync("uname", ["-r"]).toString().trim(),
      },
      durationSec,
      libvirtInstallSec: installSecs,
      sequentialOrders: orders,
      concurrentOrder,
      argv,
      argvDiffBatuVsBare: argvCheck,
      summariesMs: sum,
      targets: tg,
      checks: chk.lines,
      pairedRatios: chk.pairedRatios,
      samplesMs: relativeSamples(samples),
    };
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
    console.log(`wrote ${file.slice(REPO.length + 1)}`);
  }
}

await cleanup.runMain(main, log);
