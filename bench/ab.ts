/**
 * A/B bench: one of batu's benches run on an earlier commit (A, a git worktree) and on this checkout
 * (B), alternately in one run (A, B, A, B, ...), so both see the same machine state: single runs
 * here vary by tens of percent. Prints each figure's median for A and B and the ratio B/A.
 *
 *   npm run bench:ab -- --base <git ref> --bench api|group|vm [--rounds 2] [-- <args for the bench>]
 *
 * The base is checked out with `git worktree add --detach` under /tmp, given this checkout's
 * node_modules and build/images, and built (`npm run build`: benches drive dist/). Each run writes
 * its own results JSON in its checkout's bench/results; this reads it and removes it, then writes
 * bench/results/ab-<bench>-<date>.json with every run's figures.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { quantile } from "./lib/stats.js";

const REPO = resolve(import.meta.dirname, "..");
const separator = process.argv.indexOf("--");
const ownArgs = separator >= 0 ? process.argv.slice(2, separator) : process.argv.slice(2);
const benchArgs = separator >= 0 ? process.argv.slice(separator + 1) : [];
const { values: flags } = parseArgs({
  args: ownArgs,
  options: {
    base: { type: "string" },
    bench: { type: "string" },
    rounds: { type: "string", default: "2" },
  },
});

type Figures = Record<string, number>;

/** Each bench: its script, its results file prefix, and the figures worth comparing. */
const BENCHES: Record<string, { script: string; prefix: string; figures: (r: any) => Figures }> = {
  api: {
    script: "bench/api.ts",
    prefix: "api-",
    figures: (r) => {
      const out: Figures = {};
      for (const e of r.results) {
        out[`${e.key} req/s`] = e.batu.rps;
        out[`${e.key} p50 ms`] = e.batu.p50Ms;
        out[`${e.key} p99 ms`] = e.batu.p99Ms;
        out[`${e.key} server CPU ms/req`] = e.batu.cpuMsPerReq.server;
        out[`${e.key} ratio to bare node:http`] = e.ratio;
      }
      return out;
    },
  },
  group: {
    script: "bench/group.ts",
    prefix: "group-",
    figures: (r) => {
      const hb = r.results.heartbeat[0];
      const out: Figures = {
        "master CPU % (500 members beating)": hb.masterCpuPct,
        "master CPU ms/heartbeat": hb.masterCpuMsPerBeat,
        "heartbeat handling p50 ms": hb.masterHandling.p50,
        "heartbeat handling p99 ms": hb.masterHandling.p99,
        "group/list CPU ms/call": r.results.list.cpuMsPerCall,
      };
      for (const x of r.results.routed) {
        out[`${x.label}: direct p50 ms`] = x.direct.p50;
        out[`${x.label}: routed p50 ms`] = x.routed.p50;
        out[`${x.label}: routing adds p50 ms`] = x.addedP50Ms;
      }
      return out;
    },
  },
  vm: {
    script: "bench/vm-lifecycle.ts",
    prefix: "vm-lifecycle-",
    figures: (r) => ({
      "create→running median ms": r.summariesMs.batu_create_running.sequential.median,
      "create→running, --concurrent at once, median ms": r.summariesMs.batu_create_running.concurrent.median,
      "create→ready median ms": r.summariesMs.batu_create_ready.sequential.median,
      "bare QEMU start→ready median ms": r.summariesMs.qemu_start_ready.sequential.median,
      "batu/bare QEMU ready ratio": r.pairedRatios.batu_over_qemu,
    }),
  },
};

function git(args: string[], cwd = REPO): string {
  return execFileSync("git", args, { cwd, encoding: "utf8" }).trim();
}

/** A worktree of `ref` with this checkout's dependencies and images, built. */
function prepareBase(ref: string): { dir: string; sha: string } {
  const sha = git(["rev-parse", "--verify", `${ref}^{commit}`]);
  const dir = join("/tmp", `batu-ab-${sha.slice(0, 12)}`);
  if (!existsSync(join(dir, ".git"))) {
    rmSync(dir, { recursive: true, force: true });
    git(["worktree", "add", "--detach", dir, sha]);
  }
  if (!existsSync(join(dir, "node_modules"))) symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  mkdirSync(join(dir, "build"), { recursive: true });
  if (!existsSync(join(dir, "build", "images"))) symlinkSync(join(REPO, "build", "images"), join(dir, "build", "images"));
  execFileSync("npm", ["run", "build"], { cwd: dir, stdio: "inherit" });
  return { dir, sha };
}

function resultFiles(dir: string, prefix: string): Set<string> {
  const results = join(dir, "bench", "results");
  return new Set(existsSync(results) ? readdirSync(results).filter((f) => f.startsWith(prefix)) : []);
}

/** Runs the bench in `dir`; resolves with its results JSON (the file is removed). */
async function runIn(dir: string, bench: (typeof BENCHES)[string]): Promise<unknown> {
  const before = resultFiles(dir, bench.prefix);
  await new Promise<void>((ok, fail) => {
    const child = spawn(process.execPath, ["--import", "tsx", bench.script, ...benchArgs], { cwd: dir, stdio: "inherit" });
    child.on("error", fail);
    child.on("exit", (code) => (code === 0 ? ok() : fail(new Error(`${bench.script} in ${dir} exited with ${code}`))));
  });
  const fresh = [...resultFiles(dir, bench.prefix)].filter((f) => !before.has(f));
  if (fresh.length !== 1) throw new Error(`expected one new results file in ${dir}, found ${fresh.length}`);
  const path = join(dir, "bench", "results", fresh[0]!);
  const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
  rmSync(path);
  return parsed;
}

function table(names: string[], a: Figures[], b: Figures[]): string {
  const rows = names.map((n) => {
    const ma = quantile(a.map((f) => f[n]!).filter(Number.isFinite), 0.5);
    const mb = quantile(b.map((f) => f[n]!).filter(Number.isFinite), 0.5);
    const show = (v: number | null) => (v === null ? "-" : v.toFixed(3));
    return [n, show(ma), show(mb), ma && mb !== null ? (mb / ma).toFixed(3) : "-"];
  });
  const head = ["figure (median of rounds)", "A (base)", "B (this)", "B/A"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

async function main(): Promise<void> {
  const bench = BENCHES[flags.bench ?? ""];
  const rounds = Number(flags.rounds);
  if (!flags.base || !bench || !(rounds >= 1)) {
    console.error(`usage: ab.ts --base <git ref> --bench ${Object.keys(BENCHES).join("|")} [--rounds N] [-- <bench args>]`);
    process.exit(2);
  }
  const base = prepareBase(flags.base);
  const head = git(["rev-parse", "HEAD"]);
  const dirty = git(["status", "--porcelain", "--untracked-files=no"]) !== "";
  const a: Figures[] = [];
  const b: Figures[] = [];
  for (let round = 1; round <= rounds; round++) {
    console.log(`\n=== round ${round}/${rounds}: A (${base.sha.slice(0, 12)}) ===`);
    a.push(bench.figures(await runIn(base.dir, bench)));
    console.log(`\n=== round ${round}/${rounds}: B (${head.slice(0, 12)}${dirty ? ", uncommitted changes" : ""}) ===`);
    b.push(bench.figures(await runIn(REPO, bench)));
  }
  const names = Object.keys(a[0]!);
  const report = table(names, a, b);
  console.log(`\nA = ${flags.base} (${base.sha.slice(0, 12)}), B = ${head.slice(0, 12)}${dirty ? " + uncommitted changes" : ""}; ${rounds} rounds, alternating\n`);
  console.log(report);
  const out = join(REPO, "bench", "results", `ab-${flags.bench}-${new Date().toISOString().replace(/[:.]/g, "-").replace(/-\d+Z$/, "Z")}.json`);
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), command: `npm run bench:ab -- ${process.argv.slice(2).join(" ")}`, base: { ref: flags.base, sha: base.sha }, head: { sha: head, dirty }, rounds, benchArgs, a, b, table: report.split("\n") }, null, 2)}\n`,
  );
  console.log(`\nwritten: ${out}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
