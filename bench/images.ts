/**
 * batu's image download (sha256 on: every piece and the whole) against curl for the same file from
 * the same server over loopback, rounds interleaved so both see the same machine load.
 *   npm run bench:images -- [sizeMiB=1024] [rounds=3] [concurrency=4]
 * (target: batu ≥ 0.9× curl's throughput), and against curl followed by sha256sum (what a client that
 * verifies pays). Writes bench/results/images-<date>.json.
 * Server and downloader run in their own processes, like on two nodes.
 */
import { spawn } from "node:child_process";
import { randomFill } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { exec } from "../src/lib/exec.js";
import { downloadImage } from "../src/image/download.js";
import { startImageServer } from "../src/image/testing.js";

const self = fileURLToPath(import.meta.url);
const [mode, ...args] = process.argv.slice(2);

if (mode === "serve") {
  const s = await startImageServer(args[0]!);
  await s.library.manifest("bench.qcow2");
  console.log(s.url);
} else if (mode === "fetch") {
  const [url, dest, conc] = args as [string, string, string];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await downloadImage({ sources: [url], name: "bench.qcow2", destDir: dest, concurrency: Number(conc), dedupe: false });
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, bytes: r.sizeBytes }));
} else {
  const sizeMiB = Number(mode ?? 1024);
  const rounds = Number(args[0] ?? 3);
  const conc = args[1] ?? "4";
  const dir = await mkdtemp(join(tmpdir(), "batu-image-bench-"));
  const dest = join(dir, "dest");
  const file = await open(join(dir, "bench.qcow2"), "w");
  const buf = Buffer.allocUnsafe(16 * 1024 * 1024);
  for (let i = 0; i < sizeMiB / 16; i++) await file.write((await promisify(randomFill)(buf)) as Buffer);
  await file.close();
  const server = spawn(process.execPath, [...process.execArgv, self, "serve", dir], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((r) => server.stdout.once("data", (b: Buffer) => r(b.toString().trim())));
  const mbps = (bytes: number, s: number) => bytes / 1e6 / s;
  const rows: { curl: number; curlVerified: number; batu: number; curlCpu: number; batuCpu: number }[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      await rm(dest, { recursive: true, force: true });
      await exec("mkdir", ["-p", dest]);
      const c = await exec("/usr/bin/time", ["-f", "%U %S", "curl", "-s", "-o", join(dest, "curl.bin"), "-w", "%{size_download} %{time_total}", `${url}/images/bench.qcow2`], { timeoutMs: 600_000 });
      const [bytes, secs] = c.stdout.trim().split(" ").map(Number) as [number, number];
      const [u, s] = c.stderr.trim().split("\n").at(-1)!.split(" ").map(Number) as [number, number];
      // What verifying costs a plain client: curl, then sha256sum of what arrived (one pass, no pieces).
      const h0 = performance.now();
      await exec("sha256sum", [join(dest, "curl.bin")], { timeoutMs: 600_000 });
      const curlVerified = mbps(bytes, secs + (performance.now() - h0) / 1000);
      await rm(join(dest, "curl.bin"));
      const b = await exec(process.execPath, [...process.execArgv, self, "fetch", url, dest, conc], { timeoutMs: 600_000 });
      const br = JSON.parse(b.stdout.trim().split("\n").at(-1)!) as { seconds: number; cpuSeconds: number; bytes: number };
      rows.push({ curl: mbps(bytes, secs), curlVerified, batu: mbps(br.bytes, br.seconds), curlCpu: u + s, batuCpu: br.cpuSeconds });
      console.log(`round ${i + 1}: curl ${rows.at(-1)!.curl.toFixed(0)} MB/s (${(u + s).toFixed(2)} s CPU; then sha256sum: ${curlVerified.toFixed(0)} MB/s), batu ${rows.at(-1)!.batu.toFixed(0)} MB/s (${br.cpuSeconds.toFixed(2)} s CPU)`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const curl = median(rows.map((r) => r.curl));
    const batu = median(rows.map((r) => r.batu));
    const curlVerified = median(rows.map((r) => r.curlVerified));
    const figures = {
      sizeMiB,
      rounds,
      concurrency: Number(conc),
      curlMBps: Math.round(curl),
      curlThenSha256sumMBps: Math.round(curlVerified),
      batuMBps: Math.round(batu),
      ratio: +(batu / curl).toFixed(2),
      ratioToCurlThenSha256sum: +(batu / curlVerified).toFixed(2),
      samples: rows,
    };
    console.log(JSON.stringify({ ...figures, samples: undefined }));
    const out = resolve(import.meta.dirname, "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, `images-${new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`), JSON.stringify(figures, null, 2));
  } finally {
    if (server.pid) process.kill(server.pid, "SIGTERM");
    await rm(dir, { recursive: true, force: true });
  }
}
