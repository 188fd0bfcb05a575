import { createHash } from "node:crypto";
import { open, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { downloadImage, heldPieces, type DownloadProgress } from "./download.js";
import { digestFile } from "./digest.js";
import { ImageTransferError } from "./errors.js";
import { writeDigestRecord } from "./library.js";
import { randomFile, startImageServer, tempDir, type TestServer } from "./testing.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const PIECE = 64 * 1024;
const SIZE = 4 * 1024 * 1024 + 4321; // 65 pieces, the last one short

/** Piece indices each server was asked for (200 answers only; a run of `count` pieces counts each). */
const piecesServed = (s: TestServer) =>
  s.requests
    .filter((r) => r.url.includes("/pieces/") && r.status === 200)
    .flatMap((r) => {
      const first = Number(/\/pieces\/[^/]+\/(\d+)/.exec(r.url)![1]);
      const count = Number(/[?&]count=(\d+)/.exec(r.url)?.[1] ?? 1);
      return Array.from({ length: count }, (_, k) => first + k);
    });

describe("downloadImage", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let serverDir: string;
  let dest: string;
  let data: Buffer;
  const servers: TestServer[] = [];
  const serve = async (dir: string) => {
    const s = await startImageServer(dir, { pieceBytes: PIECE });
    servers.push(s);
    return s;
  };

  beforeEach(async () => {
    ({ dir: root, cleanup } = await tempDir());
    serverDir = join(root, "server");
    dest = join(root, "dest");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(serverDir);
    data = await randomFile(join(serverDir, "img.qcow2"), SIZE);
    await writeFile(join(serverDir, "img.json"), JSON.stringify({ name: "img", format: "qcow2", boot: "kernel", kernel: "vmlinuz-img", initrd: "initrd-img", cmdline: "console=ttyS0" }));
    await writeFile(join(serverDir, "vmlinuz-img"), "kernel");
    await writeFile(join(serverDir, "initrd-img"), "initrd");
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await cleanup();
  });

  it("downloads to done with progress, verified, with its sidecar and boot files, deduplicated", async () => {
    const server = await serve(serverDir);
    const progress: DownloadProgress[] = [];
    const r = await downloadImage({ sources: [server.url], name: "img.qcow2", destDir: dest, onProgress: (p) => progress.push(p), expected: { sha256: sha(data), sizeBytes: SIZE } });
    expect(r).toMatchObject({ sha256: sha(data), sizeBytes: SIZE, bytesFetched: SIZE, bytesResumed: 0, alreadyPresent: false });
    expect((await readFile(join(dest, "img.qcow2"))).equals(data)).toBe(true);
    expect(await readFile(join(dest, "vmlinuz-img"), "utf8")).toBe("kernel");
    expect(await readFile(join(dest, "initrd-img"), "utf8")).toBe("initrd");
    expect(JSON.parse(await readFile(join(dest, "img.json"), "utf8"))).toMatchObject({ kernel: "vmlinuz-img" });
    expect(progress.at(-1)).toEqual({ bytesDone: SIZE, bytesTotal: SIZE });
    expect(progress.map((p) => p.bytesDone)).toEqual([...progress.map((p) => p.bytesDone)].sort((a, b) => a - b));
    // No leftovers; the image is its content blob.
    expect((await readdir(dest)).filter((f) => f.includes(".part"))).toEqual([]);
    expect((await stat(join(dest, "img.qcow2"))).ino).toBe((await stat(join(dest, ".blobs", sha(data)))).ino);
    // A second call finds it there.
    expect((await downloadImage({ sources: [server.url], name: "img.qcow2", destDir: dest })).alreadyPresent).toBe(true);
  });

  it("refetches a corrupted piece from a good source", async () => {
    const badDir = join(root, "bad");
    const { mkdir, copyFile } = await import("node:fs/promises");
    await mkdir(badDir);
    await copyFile(join(serverDir, "img.qcow2"), join(badDir, "img.qcow2"));
    // Every piece of the bad copy is corrupt (with two sources the pieces come in a random order,
    // so whichever the bad source is asked for must be caught).
    await corrupt(badDir, "img.qcow2", ...Array.from({ length: Math.ceil(data.length / PIECE) }, (_, p) => p * PIECE + 17));
    const bad = await serve(badDir);
    const good = await serve(serverDir);
    // The good one first, as the server is: a bad peer is asked before it, and caught.
    const r = await downloadImage({ sources: [good.url, bad.url], name: "img.qcow2", destDir: dest, setAsideMs: 50 });
    expect(r.sha256).toBe(sha(data));
    expect((await readFile(join(dest, "img.qcow2"))).equals(data)).toBe(true);
    // The bad source was asked (an untried source is tried early), and every piece came from the good one.
    expect(bad.requests.some((q) => q.url.includes("/pieces/img.qcow2/"))).toBe(true);
    expect(new Set(piecesServed(good)).size).toBe(Math.ceil(data.length / PIECE));
  });

  it("fails with a clear error when the only source serves a corrupted byte, keeping nothing under the name", async () => {
    await corrupt(serverDir, "img.qcow2", 3 * PIECE);
    const server = await serve(serverDir);
    const err = await downloadImage({ sources: [server.url], name: "img.qcow2", destDir: dest, setAsideMs: 10, maxPieceFailures: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageTransferError);
    expect((err as Error).message).toMatch(/piece 3 failed 3 times: .*sha256 .* is not the manifest's/);
    await expect(stat(join(dest, "img.qcow2"))).rejects.toThrow();
    // Pieces 0-3 came in one request: the good ones before the bad one are kept for a resume.
    const held = await heldPieces(dest, "img.qcow2");
    expect([0, 1, 2].every((i) => held!.done.has(i))).toBe(true);
    expect(held!.done.has(3)).toBe(false);
  });

  it("resumes an aborted download without fetching its done pieces again", async () => {
    const server = await serve(serverDir);
    const stop = new AbortController();
    let abortedAt = 0;
    const err = await downloadImage({
      sources: [server.url],
      name: "img.qcow2",
      destDir: dest,
      concurrency: 2,
      signal: stop.signal,
      onProgress: (p) => {
        if (p.bytesDone >= SIZE / 2 && !stop.signal.aborted) {
          abortedAt = p.bytesDone;
          stop.abort(new Error("test cut"));
        }
      },
    }).catch((e: unknown) => e);
    expect((err as ImageTransferError).code).toBe("aborted");
    const held = await heldPieces(dest, "img.qcow2");
    expect(held!.done.size).toBeGreaterThanOrEqual(Math.floor(abortedAt / PIECE));
    const firstRun = piecesServed(server);
    server.requests.length = 0;
    const r = await downloadImage({ sources: [server.url], name: "img.qcow2", destDir: dest });
    expect(r.bytesResumed).toBe(held!.done.size * PIECE);
    expect(r.bytesFetched).toBe(SIZE - r.bytesResumed);
    const secondRun = piecesServed(server);
    for (const i of held!.done) expect(secondRun).not.toContain(i);
    expect(new Set([...firstRun, ...secondRun]).size).toBe(Math.ceil(SIZE / PIECE));
    expect((await readFile(join(dest, "img.qcow2"))).equals(data)).toBe(true);
  });

  it("spreads over a server and a peer that holds some pieces mid-download (swarm)", async () => {
    // The peer is a node halfway through its own download: it serves its verified pieces only.
    const peerDir = join(root, "peer");
    const server = await serve(serverDir);
    const stop = new AbortController();
    await downloadImage({
      sources: [server.url],
      name: "img.qcow2",
      destDir: peerDir,
      signal: stop.signal,
      onProgress: (p) => p.bytesDone >= SIZE / 2 && stop.abort(),
    }).catch(() => undefined);
    const peerHeld = (await heldPieces(peerDir, "img.qcow2"))!;
    const peer = await serve(peerDir);
    const notHeld = [...Array(Math.ceil(SIZE / PIECE)).keys()].find((i) => !peerHeld.done.has(i))!;
    expect((await fetch(`${peer.url}/pieces/img.qcow2/${notHeld}`)).status).toBe(404);
    server.requests.length = 0;
    // The server first, as the image center orders them: the peer is asked before it for each piece
    // (the server's uplink is what the swarm saves), and answers the pieces it holds.
    const r = await downloadImage({ sources: [server.url, peer.url], name: "img.qcow2", destDir: dest });
    expect((await readFile(join(dest, "img.qcow2"))).equals(data)).toBe(true);
    const fromPeer = piecesServed(peer);
    expect(fromPeer.length).toBeGreaterThan(0);
    for (const i of fromPeer) expect(peerHeld.done.has(i)).toBe(true);
    expect(r.bytesBySource[peer.url]).toBe(fromPeer.reduce((n, i) => n + Math.min(PIECE, SIZE - i * PIECE), 0));
    expect(r.bytesBySource[server.url]! + r.bytesBySource[peer.url]!).toBe(SIZE);
  });

  it("refuses a source with other content than expected, and bad names", async () => {
    const server = await serve(serverDir);
    await expect(downloadImage({ sources: [server.url], name: "img.qcow2", destDir: dest, expected: { sha256: "0".repeat(64), sizeBytes: SIZE } })).rejects.toThrow(/holds other content/);
    await expect(downloadImage({ sources: [server.url], name: "../x.qcow2", destDir: dest })).rejects.toThrow(/invalid/);
    await expect(downloadImage({ sources: [server.url], name: "a/b.qcow2", destDir: dest })).rejects.toThrow(/invalid/);
    await expect(downloadImage({ sources: [server.url], name: "none.qcow2", destDir: dest })).rejects.toThrow(/no source has the manifest/);
  });

  it("refuses a sidecar naming a boot file outside the folder", async () => {
    await writeFile(join(serverDir, "img.json"), JSON.stringify({ name: "img", format: "qcow2", boot: "kernel", kernel: "../../etc/passwd", cmdline: "x" }));
    const server = await serve(serverDir);
    await expect(downloadImage({ sources: [server.url], name: "img.qcow2", destDir: dest })).rejects.toThrow(/metadata could not be fetched: .* answered 400/);
    await expect(stat(join(dest, "img.qcow2"))).rejects.toThrow();
  });
});

/**
 * Inverts one byte of an image while its digest cache keeps claiming the good bytes: a server
 * whose disk went bad under it, serving a manifest of what the file no longer holds.
 */
async function corrupt(dir: string, name: string, ...offsets: number[]): Promise<void> {
  const path = join(dir, name);
  const good = await digestFile(path, { pieceBytes: PIECE });
  const h = await open(path, "r+");
  const b = Buffer.alloc(1);
  for (const at of offsets) {
    await h.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await h.write(b, 0, 1, at);
  }
  await h.close();
  await writeDigestRecord(join(dir, `.${name}.digest.json`), good, await stat(path));
}
