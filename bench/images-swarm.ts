/**
 * The swarm bench: one image server and 4 members, each in a network namespace of its own on one
 * bridge (test/helpers/netns.ts), the server's link shaped by tc to a fixed rate (its uplink the
 * bottleneck, as in a machine room). Figures:
 * - one member pulling the image alone from the server (T1);
 * - 4 members pulling it at once from the server only (no swarm);
 * - 4 members pulling it at once from the server and from each other (batu's swarm: each serves the
 *   verified pieces it holds over the same HTTP interface).
 * The swarm's total against 4 × T1 is the target's measure (≤ 0.5).
 *
 *   npm run bench:images-swarm -- [--mib 128] [--rate-mbit 200] [--no-json]
 * Needs root (network namespaces). Writes bench/results/images-swarm-<date>.json.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { downloadImage } from "../src/image/download.js";
import { startImageServer } from "../src/image/testing.js";
import { Lan, netnsUnavailableReason, type NetnsHost } from "../test/helpers/netns.js";

const self = fileURLToPath(import.meta.url);
const PORT = 10100;
const [mode, ...rest] = process.argv.slice(2);

if (mode === "serve") {
  // An image server (or a member's piece server) over `dir`, inside its namespace.
  const [dir] = rest as [string];
  const s = await startImageServer(dir, { host: "0.0.0.0", port: PORT });
  console.log(`ready ${s.url}`);
} else if (mode === "pull") {
  // One member: serves what it holds, waits for "go" on stdin, pulls from `sources`, prints figures.
  const [dir, ...sources] = rest as [string, ...string[]];
  mkdirSync(dir, { recursive: true });
  await startImageServer(dir, { host: "0.0.0.0", port: PORT });
  console.log("ready");
  await new Promise<void>((r) => process.stdin.once("data", () => r()));
  const t0 = performance.now();
  const r = await downloadImage({ sources, name: "swarm.qcow2", destDir: dir, dedupe: false, lackingTimeoutMs: 120_000 });
  // Keeps serving its pieces to the others until the bench ends the round.
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000, bytesBySource: r.bytesBySource }));
} else {
  await main();
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { mib: { type: "string", default: "128" }, "rate-mbit": { type: "string", default: "200" }, "no-json": { type: "boolean", default: false } } });
  const mib = Number(values.mib);
  const rateMbit = Number(values["rate-mbit"]);
  const why = await netnsUnavailableReason();
  if (why) throw new Error(`network namespaces unavailable: ${why}`);
  const root = mkdtempSync(join(tmpdir(), "batu-bench-swarm-"));
  const lan = await Lan.create(root);
  const children: ChildProcess[] = [];
  try {
    const server = await lan.addHost(1);
    const members: NetnsHost[] = [];
    for (let i = 2; i <= 5; i++) members.push(await lan.addHost(i));
    // The server's uplink: a token bucket at the given rate.
    await lan.exec(server, ["tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", `${rateMbit}mbit`, "burst", "256kb", "latency", "100ms"]);
    const serverDir = join(root, "server");
    mkdirSync(serverDir);
    const fd = openSync(join(serverDir, "swarm.qcow2"), "w");
    const buf = Buffer.alloc(16 * 2 ** 20);
    for (let i = 0; i < mib / 16; i++) writeSync(fd, randomFillSync(buf));
    closeSync(fd);
    const node = [process.execPath, ...process.execArgv, self];
    const started = (argv: string[]): Promise<ChildProcess> =>
      new Promise((ok, fail) => {
        const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
        children.push(child);
        child.stdout!.once("data", () => ok(child));
        child.once("exit", (code) => fail(new Error(`${argv.join(" ")} exited ${code}`)));
      });
    await started([...server.wrap, ...node, "serve", serverDir]);
    const serverUrl = `http://${server.ip}:${PORT}/image-server/v1`;
    const urlOf = (h: NetnsHost) => `http://${h.ip}:${PORT}/image-server/v1`;

    const round = async (who: NetnsHost[], swarm: boolean, label: string) => {
      const pullers = [];
      for (const m of who) {
        const dir = join(root, `${label}-${m.name}`);
        const sources = [serverUrl, ...(swarm ? who.filter((o) => o !== m).map(urlOf) : [])];
        pullers.push(await started([...m.wrap, ...node, "pull", dir, ...sources]));
      }
      const t0 = performance.now();
      const results = pullers.map(
        (p) =>
          new Promise<{ seconds: number; bytesBySource: Record<string, number> }>((ok, fail) => {
            let out = "";
            p.stdout!.on("data", (b: Buffer) => {
              out += b.toString();
              const line = out.split("\n").find((l) => l.startsWith("{"));
              if (line) ok(JSON.parse(line) as { seconds: number; bytesBySource: Record<string, number> });
            });
            p.once("exit", (code) => fail(new Error(`a pull exited ${code}: ${out}`)));
          }),
      );
      for (const p of pullers) p.stdin!.write("go\n");
      const each = await Promise.all(results);
      const total = (performance.now() - t0) / 1000;
      for (const p of pullers) p.kill("SIGKILL");
      const fromServer = each.reduce((n, r) => n + (r.bytesBySource[serverUrl] ?? 0), 0) / 2 ** 20;
      console.log(`${label.padEnd(22)} total ${total.toFixed(2)} s; from the server ${fromServer.toFixed(0)} MiB of ${mib * who.length} MiB`);
      return { total, each, fromServerMiB: fromServer };
    };
    console.log(`image ${mib} MiB; the server's link shaped to ${rateMbit} Mbit/s; 4 members`);
    const one = await round(members.slice(0, 1), false, "one pull");
    const plain = await round(members, false, "4 at once, server only");
    const swarm = await round(members, true, "4 at once, swarm");
    const ratio = swarm.total / (4 * one.total);
    console.log(`\nswarm total / (4 × one pull) = ${swarm.total.toFixed(2)} / ${(4 * one.total).toFixed(2)} = ${ratio.toFixed(2)} (target ≤ 0.5); server only: ${(plain.total / (4 * one.total)).toFixed(2)}`);
    if (!values["no-json"]) {
      const dir = resolve(import.meta.dirname, "results");
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `images-swarm-${new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`), JSON.stringify({ mib, rateMbit, one, plain, swarm, ratio }, null, 2));
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await lan.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}
