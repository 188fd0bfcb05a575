/**
 * `npm run bench:console`: the web console's first load with 100 VM records in the store.
 *
 * Starts a real agent once (it creates its store), stops it, writes 100 closed VMs straight into its
 * SQLite store (bench/lib/api-store.ts: nothing boots), starts it again and loads the console in
 * headless Chromium, signed in (the admin token put in sessionStorage before the page loads), RUNS
 * times, each in a fresh browser context (empty cache). Reports:
 * - the bytes of JavaScript shipped, as transferred (the agent serves the build's precompressed
 *   .br/.gz files) and decoded, from the page's resource timing, and whether the renter's signing
 *   chunk stayed unloaded (it must: the operator never signs);
 * - the time from navigation start to the 100 rows of the VM list in the page (the event stream's
 *   first message), median and worst.
 * Targets: under 300 KB of JS compressed; the list shown in under 1 s. Writes bench/results/console-<date>.json.
 * Run it under the machine's lock like the tests: `flock /tmp/batu-qemu.lock npm run bench:console`.
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { startAgentProcess, tempDir, type AgentProcess } from "../test/helpers/agent-process.js";
import { seedTasks } from "./lib/api-store.js";

const REPO = resolve(import.meta.dirname, "..");
const VMS = 100;
const RUNS = 7;
const TARGET_JS_BYTES = 300 * 1024;
const TARGET_LIST_MS = 1000;
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

interface Load {
  listMs: number;
  /** The page parsed and its script run. */
  domContentLoadedMs: number;
  jsTransferred: number;
  jsDecoded: number;
  scripts: string[];
}

/** Each JS chunk of the build: its size, and that of the .br and .gz the agent serves in its place. */
function chunks(): Array<{ file: string; bytes: number; br: number; gz: number }> {
  const dir = join(REPO, "dist/web/assets");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".js"))
    .map((file) => ({ file, bytes: statSync(join(dir, file)).size, br: statSync(join(dir, `${file}.br`)).size, gz: statSync(join(dir, `${file}.gz`)).size }));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;

async function main(): Promise<void> {
  const loadStart = loadavg()[0]!;
  const dir = tempDir("batu-bench-console-");
  let agent: AgentProcess | undefined;
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
  try {
    const options = { dir, extraArgs: ["--network", "user"] };
    await (await startAgentProcess(options)).stop();
    const seeded = await seedTasks({ dataDir: join(dir, "data"), root: dir, owner: "5bench-renter", count: VMS, baseImage: join(REPO, "build/images/batu-demo.qcow2") });
    agent = await startAgentProcess(options);
    const loads: Load[] = [];
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      // The callbacks below run in the page; this Node project has no DOM types, hence the `any`s.
      await context.addInitScript((token) => (globalThis as any).sessionStorage.setItem("batu.adminToken", token), agent.adminToken);
      const page = await context.newPage();
      await page.goto(agent.url);
      await page.waitForFunction((n) => (globalThis as any).document.querySelectorAll("tr[data-vm]").length === n, VMS, { polling: "raf", timeout: 30_000 });
      const load = await page.evaluate(() => {
        const listMs: number = (globalThis as any).performance.now();
        const timing = (globalThis as any).performance;
        const scripts = (timing.getEntriesByType("resource") as any[]).filter((e) => e.name.endsWith(".js"));
        const entry = timing.getEntriesByType("navigation")[0];
        return {
          listMs: listMs - (entry?.startTime ?? 0),
          domContentLoadedMs: (entry?.domContentLoadedEventEnd ?? 0) as number,
          jsTransferred: scripts.reduce((n, e) => n + e.encodedBodySize, 0),
          jsDecoded: scripts.reduce((n, e) => n + e.decodedBodySize, 0),
          scripts: scripts.map((e) => new URL(e.name).pathname as string),
        };
      });
      loads.push(load);
      await context.close();
    }
    const listMs = loads.map((l) => l.listMs);
    const first = loads[0]!;
    const signingLoaded = loads.some((l) => l.scripts.some((s) => s.includes("wallet-signer")));
    const result = {
      vms: VMS,
      runs: RUNS,
      jsTransferredBytes: first.jsTransferred,
      jsDecodedBytes: first.jsDecoded,
      scripts: first.scripts,
      renterSigningChunkLoaded: signingLoaded,
      domContentLoadedMs: median(loads.map((l) => l.domContentLoadedMs)),
      listShownMs: { median: median(listMs), max: Math.max(...listMs), all: listMs.map((m) => Math.round(m)) },
      targets: { jsTransferredBytes: TARGET_JS_BYTES, listShownMs: TARGET_LIST_MS },
      met: { js: first.jsTransferred < TARGET_JS_BYTES, list: median(listMs) < TARGET_LIST_MS, signingChunkDeferred: !signingLoaded },
      seedMs: Math.round(seeded.ms),
      chunks: chunks(),
      // The machine is shared (2 cores here): the times move with its load, which is kept beside them.
      load: { start: loadStart, end: loadavg()[0]! },
    };
    console.log(`console first load, ${VMS} VMs in the store, ${RUNS} runs (fresh browser context each; load average ${result.load.start.toFixed(1)} → ${result.load.end.toFixed(1)})`);
    console.log(`  JS shipped (compressed, as transferred): ${kb(result.jsTransferredBytes)}  (decoded ${kb(result.jsDecodedBytes)}; target < ${kb(TARGET_JS_BYTES)})`);
    console.log(`  scripts loaded: ${first.scripts.join(", ")}; renter signing chunk loaded: ${signingLoaded ? "YES" : "no"}`);
    for (const c of result.chunks) console.log(`  chunk ${c.file}: ${kb(c.bytes)}, served as ${kb(c.br)} (br) or ${kb(c.gz)} (gzip)`);
    console.log(`  VM list shown: median ${result.listShownMs.median.toFixed(0)} ms, max ${result.listShownMs.max.toFixed(0)} ms (target < ${TARGET_LIST_MS} ms)`);
    console.log(`    of which the page parsed and its script run: ${result.domContentLoadedMs.toFixed(0)} ms (median, from navigation start); the rest is the event stream's list and its rendering`);
    const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
    const out = join(REPO, "bench/results");
    mkdirSync(out, { recursive: true });
    const file = join(out, `console-${stamp}.json`);
    writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), command: "npm run bench:console", result }, null, 2)}\n`);
    console.log(`wrote ${file.slice(REPO.length + 1)}`);
  } finally {
    await browser.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
