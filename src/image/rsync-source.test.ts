import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { downloadRsync, listRsync, parseRsyncList, uploadRsync, type RsyncServer } from "./rsync-source.js";
import { randomFile, tempDir } from "./testing.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, "127.0.0.1", () => {
        s.destroy();
        r(true);
      }).on("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`rsync daemon did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("rsync image server (a local rsync daemon, as DBC runs them)", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let daemon: ChildProcess;
  let server: RsyncServer;
  let data: Buffer;

  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir("batu-rsync-"));
    const moduleDir = join(root, "module");
    await mkdir(moduleDir);
    data = await randomFile(join(moduleDir, "dbc.qcow2"), 2 * 1024 * 1024 + 77);
    await writeFile(join(moduleDir, "notes.txt"), "not an image");
    const port = await freePort();
    const conf = join(root, "rsyncd.conf");
    // The daemon runs as this user (as root it would drop to nobody, who cannot write the folder).
    await writeFile(
      conf,
      [`uid = ${process.getuid!()}`, `gid = ${process.getgid!()}`, "use chroot = no", `log file = ${join(root, "rsyncd.log")}`, "[images]", `  path = ${moduleDir}`, "  read only = false", ""].join("\n"),
    );
    daemon = spawn("rsync", ["--daemon", "--no-detach", "--config", conf, "--port", String(port), "--address", "127.0.0.1"], { stdio: "ignore" });
    await waitForPort(port);
    server = { host: "127.0.0.1", port, module: "images" };
  });
  afterAll(async () => {
    if (daemon?.pid) process.kill(daemon.pid, "SIGTERM");
    await new Promise((r) => (daemon.exitCode !== null ? r(null) : daemon.once("exit", r)));
    await cleanup();
  });

  it("parses --list-only lines, images only", () => {
    const out = [
      "drwxr-xr-x          4,096 2024/01/02 03:04:05 .",
      "-rw-r--r--  1,073,741,824 2024/01/02 03:04:05 ubuntu.qcow2",
      "-rw-r--r--            12 2024/01/02 03:04:05 notes.txt",
      "-rw-r--r--         1.024 2024/01/02 03:04:05 de.qcow2",
    ].join("\n");
    expect(parseRsyncList(out)).toEqual([
      { name: "de.qcow2", sizeBytes: 1024 },
      { name: "ubuntu.qcow2", sizeBytes: 1073741824 },
    ]);
  });

  it("lists the module's images with sizes", async () => {
    expect(await listRsync(server)).toEqual([{ name: "dbc.qcow2", sizeBytes: data.length }]);
  });

  it("downloads with progress into place and returns the sha256 it computed", async () => {
    const dest = join(root, "dest");
    const progress: number[] = [];
    const r = await downloadRsync({ ...server, name: "dbc.qcow2", destDir: dest, onProgress: (p) => progress.push(p.bytesDone) });
    expect(r).toMatchObject({ sizeBytes: data.length, sha256: sha(data) });
    expect((await readFile(join(dest, "dbc.qcow2"))).equals(data)).toBe(true);
    expect(progress.at(-1)).toBe(data.length);
    await expect(downloadRsync({ ...server, name: "nope.qcow2", destDir: dest })).rejects.toThrow(/has no image nope.qcow2/);
    await expect(downloadRsync({ ...server, name: "../x.qcow2", destDir: dest })).rejects.toThrow(/invalid/);
  });

  it("uploads an image and refuses to replace one of other content", async () => {
    const src = join(root, "up.qcow2");
    const up = await randomFile(src, 300_000);
    expect(await uploadRsync({ ...server, name: "pushed.qcow2", path: src })).toEqual({ sizeBytes: up.length });
    expect((await readFile(join(root, "module", "pushed.qcow2"))).equals(up)).toBe(true);
    await randomFile(src, 1000);
    await expect(uploadRsync({ ...server, name: "pushed.qcow2", path: src })).rejects.toThrow(/never overwritten/);
  });

  it("refuses a host or module that would read as an option", async () => {
    await expect(listRsync({ ...server, host: "-e sh" })).rejects.toThrow(/host is invalid/);
    await expect(listRsync({ ...server, module: "--x" })).rejects.toThrow(/module is invalid/);
  });
});
