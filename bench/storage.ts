/**
 * Storage bench: one batu agent and one running demo VM (its HTTP server forwarded to the host) with
 * a 1 GiB data disk full of data (written by qemu-io while the VM is shut off, before the rounds).
 *
 *   npm run bench:storage -- [--rounds 3] [--data-gib 1] [--no-json]
 *
 * Figures, over `--rounds` rounds:
 * - a live snapshot of the running VM holding its data disk (`/common/vm/snapshot/create` with
 *   `disks: ["vdb"]`) against the same chain copied by hand: `qemu-img convert -O qcow2 -B <base>` of
 *   vda and `qemu-img convert -O qcow2` of vdb, done on copies (the ratio is the target's measure: ≤ 1.2);
 * - the guest's pause during the snapshot, seen from outside: the longest gap between answers of
 *   its HTTP server probed every 10 ms, against the same probe with no snapshot (target ≤ 100 ms);
 * - live disk add, grow and delete latency (`/common/vm/disk/*`, the guest seeing each).
 * Agent: dist/cli/main.js (`npm run build` first), on 127.0.0.1 with temporary dirs. Prints the
 * table; writes bench/results/storage-<date>.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BatuAgent } from "./lib/batu.js";
import { Cleanup } from "./lib/cleanup.js";
import { benchLog, loadAvg, now, run, sleep } from "./lib/proc.js";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    "data-gib": { type: "string", default: "1" },
    "no-json": { type: "boolean", default: false },
  },
});
const ROUNDS = Number(args.rounds);
const DATA_GIB = Number(args["data-gib"]);
const started = now();
const log = benchLog(started);
const cleanup = new Cleanup();

async function call(agent: BatuAgent, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${agent.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${agent.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}: ${text.slice(0, 400)}`);
  return JSON.parse(text);
}

/** Probes the guest's HTTP server every 10 ms until stopped; the longest gap between two answers (ms). */
function probeGaps(port: number): { stop: () => Promise<{ maxGapMs: number; answers: number; gapEndedAt: number }> } {
  let running = true;
  let last = now();
  let maxGapMs = 0;
  let gapEndedAt = 0;
  let answers = 0;
  const loop = (async () => {
    while (running) {
      const t = now();
      try {
        await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.arrayBuffer());
        const at = now();
        if (at - last > maxGapMs) gapEndedAt = at;
        maxGapMs = Math.max(maxGapMs, at - last);
        last = at;
        answers++;
      } catch {
        // A refused or timed-out probe is part of the gap.
      }
      await sleep(Math.max(0, 10 - (now() - t)));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { maxGapMs, answers, gapEndedAt };
    },
  };
}

async function guestDisks(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/cgi-bin/disks`)).text();
  return Object.fromEntries(text.trim().split("\n").map((l) => l.split(" ")).map(([d, s]) => [d!, Number(s)]));
}

async function until(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!(await pred().catch(() => false))) {
    if (now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "batu-bench-storage-"));
  cleanup.add("remove temp dir", () => rmSync(root, { recursive: true, force: true }));
  log(`temp dir ${root}; load ${await loadAvg()}`);
  const agent = await BatuAgent.start(root);
  cleanup.add("stop agent", () => agent.shutdown());
  const port = 20000 + Math.floor(Math.random() * 20000);
  const added = await call(agent, "/common/vm/add", { nickname: "bench-storage", cpu_physical_core: 1, main_memory: "512M", disk_memory: "1G", custom_port: [`tcp,${port}:80`] });
  const vmId: string = added.id;
  cleanup.add("delete vm", async () => void (await call(agent, "/common/vm/control", { vm_id: vmId, action: "delete" }).catch(() => undefined)));
  await until(async () => (await call(agent, "/common/vm/list")).find((v: any) => v.id === vmId)?.ready === true, 120_000, "vm ready");
  await until(async () => (await fetch(`http://127.0.0.1:${port}/`)).status === 200, 60_000, "guest http");
  log(`vm ${vmId} ready; guest http on ${port}`);
  // The data disk: added live, then filled while the VM is off (qemu-io writes every byte: nothing sparse to skip).
  const { name: dataDisk } = await call(agent, "/common/vm/disk/add", { vm_id: vmId, size_gib: DATA_GIB });
  await call(agent, "/common/vm/control", { vm_id: vmId, action: "shutdown" });
  await until(async () => (await call(agent, "/common/vm/list")).find((v: any) => v.id === vmId)?.status === "closed", 60_000, "vm shut down");
  const dataPath = join(agent.dataDir, "vms", vmId, `${dataDisk}.qcow2`);
  await run("qemu-io", ["-f", "qcow2", "-c", `write -P 0xab 0 ${DATA_GIB}G`, dataPath]);
  await call(agent, "/common/vm/control", { vm_id: vmId, action: "start" });
  await until(async () => (await call(agent, "/common/vm/list")).find((v: any) => v.id === vmId)?.ready === true, 120_000, "vm ready again");
  await until(async () => (await fetch(`http://127.0.0.1:${port}/`)).status === 200, 60_000, "guest http again");
  log(`data disk ${dataDisk}: ${DATA_GIB} GiB written`);

  const snapshotMs: number[] = [];
  const handMs: number[] = [];
  const snapGap: number[] = [];
  const idleGap: number[] = [];
  const addMs: number[] = [];
  const growMs: number[] = [];
  const delMs: number[] = [];
  const vda = join(agent.dataDir, "vms", vmId, "vda.qcow2");
  const base = join(agent.dataDir, "images", "batu-demo.qcow2");
  for (let round = 0; round < ROUNDS; round++) {
    // A write of the guest's between two snapshots (the demo's marker: small).
    await fetch(`http://127.0.0.1:${port}/cgi-bin/marker?round-${round}`);
    // The probe alone, then the probe during a live snapshot.
    const idle = probeGaps(port);
    await sleep(1500);
    idleGap.push((await idle.stop()).maxGapMs);
    const probe = probeGaps(port);
    const t0 = now();
    await call(agent, "/common/vm/snapshot/create", { vm_id: vmId, name: `r${round}`, disks: [dataDisk] });
    snapshotMs.push(now() - t0);
    await sleep(200);
    const probed = await probe.stop();
    snapGap.push(probed.maxGapMs);
    log(`  longest gap ${fmt(probed.maxGapMs)} ended ${fmt(probed.gapEndedAt - t0)} after the snapshot call (which took ${fmt(snapshotMs.at(-1)!)})`);
    // The same chain by hand, on copies of the disks taken with the guest's writes (qemu-img needs no lock on a copy).
    const copy = join(root, `vda-${round}.qcow2`);
    const dataCopy = join(root, `data-${round}.qcow2`);
    await run("cp", ["--reflink=auto", vda, copy]);
    await run("cp", ["--reflink=auto", dataPath, dataCopy]);
    const out = join(root, `hand-${round}.qcow2`);
    const dataOut = join(root, `hand-data-${round}.qcow2`);
    const t1 = now();
    await run("qemu-img", ["convert", "-U", "-q", "-f", "qcow2", "-O", "qcow2", "-B", resolve(base), "-F", "qcow2", copy, out]);
    await run("qemu-img", ["convert", "-U", "-q", "-f", "qcow2", "-O", "qcow2", dataCopy, dataOut]);
    handMs.push(now() - t1);
    for (const f of [copy, dataCopy, out, dataOut]) rmSync(f, { force: true });
    await call(agent, "/common/vm/snapshot/delete", { vm_id: vmId, name: `r${round}` });

    // Live disks, each seen by the guest.
    let t = now();
    const { name } = await call(agent, "/common/vm/disk/add", { vm_id: vmId, size_gib: 1 });
    await until(async () => (await guestDisks(port))[name] === 2 ** 30, 30_000, "disk in the guest");
    addMs.push(now() - t);
    t = now();
    await call(agent, "/common/vm/disk/resize", { vm_id: vmId, disk: name, grow_gib: 1 });
    await until(async () => (await guestDisks(port))[name] === 2 * 2 ** 30, 30_000, "grown disk in the guest");
    growMs.push(now() - t);
    t = now();
    await call(agent, "/common/vm/disk/delete", { vm_id: vmId, disk: name });
    delMs.push(now() - t);
    log(`round ${round + 1}/${ROUNDS}: snapshot ${fmt(snapshotMs.at(-1)!)} (by hand ${fmt(handMs.at(-1)!)}), longest gap ${fmt(snapGap.at(-1)!)} (idle ${fmt(idleGap.at(-1)!)}); disk add ${fmt(addMs.at(-1)!)}, grow ${fmt(growMs.at(-1)!)}, delete ${fmt(delMs.at(-1)!)}`);
  }
  const figures = {
    snapshotLiveMs: median(snapshotMs),
    convertByHandMs: median(handMs),
    ratio: median(snapshotMs) / median(handMs),
    guestLongestGapMs: { duringSnapshot: median(snapGap), idle: median(idleGap), added: median(snapGap) - median(idleGap) },
    diskMs: { addSeenByGuest: median(addMs), growSeenByGuest: median(growMs), delete: median(delMs) },
  };
  console.log("\nmedians over", ROUNDS, "rounds (TCG guest; every VM operation through the host API):");
  console.log(`  live snapshot of the running VM, vda + ${DATA_GIB} GiB vdb  ${fmt(figures.snapshotLiveMs)}   qemu-img convert -B by hand ${fmt(figures.convertByHandMs)}   ratio ${figures.ratio.toFixed(2)} (target ≤ 1.2)`);
  console.log(`  guest's longest gap, 10 ms probes    during snapshot ${fmt(figures.guestLongestGapMs.duringSnapshot)}   idle ${fmt(figures.guestLongestGapMs.idle)}   (target: pause ≤ 100 ms)`);
  console.log(`  live disk add (guest sees it)        ${fmt(figures.diskMs.addSeenByGuest)}   grow (guest sees it) ${fmt(figures.diskMs.growSeenByGuest)}   delete ${fmt(figures.diskMs.delete)}`);
  if (!args["no-json"]) {
    const dir = resolve(import.meta.dirname, "results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `storage-${new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`);
    writeFileSync(file, JSON.stringify({ rounds: ROUNDS, dataGiB: DATA_GIB, figures, samples: { snapshotMs, handMs, snapGap, idleGap, addMs, growMs, delMs } }, null, 2));
    log(`wrote ${file}`);
  }
}

await cleanup.runMain(main, log);
