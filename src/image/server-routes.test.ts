import { createHash } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ImageTransferError } from "./errors.js";
import { uploadImage } from "./http-source.js";
import { randomFile, startImageServer, tempDir, type TestServer } from "./testing.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const PIECE = 64 * 1024;

describe("image server routes", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: TestServer;
  let data: Buffer;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    data = await randomFile(join(dir, "a.qcow2"), 3 * 1024 * 1024 + 123);
    await writeFile(join(dir, "a.json"), JSON.stringify({ name: "a", format: "qcow2", boot: "kernel", kernel: "vmlinuz-a", cmdline: "console=ttyS0" }));
    await writeFile(join(dir, "vmlinuz-a"), "kernel bytes");
    await writeFile(join(dir, "secret.txt"), "not served");
    server = await startImageServer(dir, { pieceBytes: PIECE });
  });
  afterEach(async () => {
    await server.close();
    await cleanup();
  });

  it("lists images with size and sha256, never hidden or part files", async () => {
    await writeFile(join(dir, ".b.qcow2"), "hidden");
    await writeFile(join(dir, "c.qcow2.part"), "part");
    const res = await fetch(`${server.url}/images`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ name: "a.qcow2", size_bytes: data.length, sha256: sha(data) }]);
    // The digest is cached beside the image, so a second listing does not rehash.
    expect((await readdir(dir)).filter((f) => f.startsWith(".a.qcow2.digest"))).toEqual([".a.qcow2.digest.json"]);
  });

  it("serves the whole file with ETag, Content-Length and Accept-Ranges; HEAD without a body", async () => {
    const res = await fetch(`${server.url}/images/a.qcow2`);
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe(`"${sha(data)}"`);
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("content-length")).toBe(String(data.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    const head = await fetch(`${server.url}/images/a.qcow2`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(data.length));
    expect(head.headers.get("etag")).toBe(`"${sha(data)}"`);
    const cached = await fetch(`${server.url}/images/a.qcow2`, { headers: { "if-none-match": `"${sha(data)}"` } });
    expect(cached.status).toBe(304);
  });

  it("answers a Range with 206 and Content-Range, honours If-Range, refuses an unsatisfiable one with 416", async () => {
    const part = await fetch(`${server.url}/images/a.qcow2`, { headers: { range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${data.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
    const tail = await fetch(`${server.url}/images/a.qcow2`, { headers: { range: "bytes=-10" } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(data.length - 10))).toBe(true);
    const open = await fetch(`${server.url}/images/a.qcow2`, { headers: { range: `bytes=${data.length - 5}-` } });
    expect(open.status).toBe(206);
    expect((await open.arrayBuffer()).byteLength).toBe(5);

    const sameTag = await fetch(`${server.url}/images/a.qcow2`, { headers: { range: "bytes=0-9", "if-range": `"${sha(data)}"` } });
    expect(sameTag.status).toBe(206);
    await sameTag.arrayBuffer();
    const otherTag = await fetch(`${server.url}/images/a.qcow2`, { headers: { range: "bytes=0-9", "if-range": '"0000"' } });
    expect(otherTag.status).toBe(200);
    expect((await otherTag.arrayBuffer()).byteLength).toBe(data.length);

    const beyond = await fetch(`${server.url}/images/a.qcow2`, { headers: { range: `bytes=${data.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe(`bytes */${data.length}`);
  });

  it("serves the manifest, the sidecar and only the boot files it names", async () => {
    const m = (await (await fetch(`${server.url}/images/a.qcow2/manifest`)).json()) as { pieces: string[]; sha256: string; pieceBytes: number };
    expect(m.sha256).toBe(sha(data));
    expect(m.pieceBytes).toBe(PIECE);
    expect(m.pieces).toHaveLength(Math.ceil(data.length / PIECE));
    expect(m.pieces[1]).toBe(sha(data.subarray(PIECE, 2 * PIECE)));
    expect(((await (await fetch(`${server.url}/images/a.qcow2/meta`)).json()) as { kernel: string }).kernel).toBe("vmlinuz-a");
    const kernel = await fetch(`${server.url}/images/a.qcow2/files/vmlinuz-a`);
    expect(await kernel.text()).toBe("kernel bytes");
    expect((await fetch(`${server.url}/images/a.qcow2/files/secret.txt`)).status).toBe(404);
    await randomFile(join(dir, "b.qcow2"), 1000);
    expect((await fetch(`${server.url}/images/b.qcow2/meta`)).status).toBe(404);
  });

  it("serves pieces of a complete image, checked against the asker's sha256", async () => {
    const res = await fetch(`${server.url}/pieces/a.qcow2/2?sha256=${sha(data)}&piece_bytes=${PIECE}`);
    expect(res.status).toBe(200);
    const piece = Buffer.from(await res.arrayBuffer());
    expect(piece.equals(data.subarray(2 * PIECE, 3 * PIECE))).toBe(true);
    expect(res.headers.get("x-piece-sha256")).toBe(sha(piece));
    expect((await fetch(`${server.url}/pieces/a.qcow2/2?sha256=${"0".repeat(64)}`)).status).toBe(404);
    expect((await fetch(`${server.url}/pieces/a.qcow2/9999`)).status).toBe(416);
    expect((await fetch(`${server.url}/pieces/nope.qcow2/0`)).status).toBe(404);
    // A run of pieces back to back in one reply; none past the end.
    const run = await fetch(`${server.url}/pieces/a.qcow2/1?sha256=${sha(data)}&piece_bytes=${PIECE}&count=3`);
    expect(run.status).toBe(200);
    expect(Buffer.from(await run.arrayBuffer()).equals(data.subarray(PIECE, 4 * PIECE))).toBe(true);
    expect(run.headers.get("x-piece-sha256")).toBeNull();
    const pieces = Math.ceil(data.length / PIECE);
    expect((await fetch(`${server.url}/pieces/a.qcow2/${pieces - 2}?piece_bytes=${PIECE}&count=3`)).status).toBe(416);
    expect((await fetch(`${server.url}/pieces/a.qcow2/0?count=0`)).status).toBe(400);
  });

  it("refuses names that leave the folder or are not images", async () => {
    for (const bad of ["..%2Fx.qcow2", "..%2F..%2Fetc%2Fpasswd", ".a.qcow2.digest.json", "secret.txt", "a%2Fb.qcow2"]) {
      const res = await fetch(`${server.url}/images/${bad}`);
      expect([400, 404], bad).toContain(res.status);
      expect(res.status, bad).not.toBe(200);
    }
    expect((await fetch(`${server.url}/images/..%2Fx.qcow2`)).status).toBe(400);
    expect((await fetch(`${server.url}/images/a/b`)).status).toBe(404);
    const put = await fetch(`${server.url}/images/..%2Fx.qcow2`, { method: "PUT", headers: { "content-type": "application/octet-stream", "x-image-sha256": sha(Buffer.from("x")) }, body: "x" });
    expect(put.status).toBe(400);
  });

  it("asks authorize for each action and lets it refuse", async () => {
    const seen: string[] = [];
    const guarded = await startImageServer(dir, {
      authorize: (_req, action) => {
        seen.push(action);
        if (action === "write") throw new ImageTransferError("bad_request", "no writes here");
      },
    });
    try {
      await (await fetch(`${guarded.url}/images`)).arrayBuffer();
      await (await fetch(`${guarded.url}/images/a.qcow2`, { method: "HEAD" })).arrayBuffer();
      const put = await fetch(`${guarded.url}/images/z.qcow2`, { method: "PUT", headers: { "content-type": "application/octet-stream", "x-image-sha256": "0".repeat(64) }, body: "z" });
      expect(put.status).toBe(400);
      expect(seen).toEqual(["list", "read", "write"]);
    } finally {
      await guarded.close();
    }
  });

  describe("upload", () => {
    const put = (name: string, body: Buffer, headers: Record<string, string>) =>
      fetch(`${server.url}/images/${name}`, { method: "PUT", headers: { "content-type": "application/octet-stream", ...headers }, body });

    it("takes a whole upload, verifies it and lists it", async () => {
      const up = Buffer.alloc(500_000, 7);
      const res = await put("up.qcow2", up, { "x-image-sha256": sha(up) });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ done: true, sha256: sha(up), held_bytes: up.length });
      expect((await readFile(join(dir, "up.qcow2"))).equals(up)).toBe(true);
      expect((await readdir(dir)).filter((f) => f.includes("upload"))).toEqual([]);
      // The same content again is a no-op; other content under the name is refused.
      expect((await put("up.qcow2", up, { "x-image-sha256": sha(up) })).status).toBe(200);
      const other = Buffer.alloc(10, 1);
      expect((await put("up.qcow2", other, { "x-image-sha256": sha(other) })).status).toBe(409);
      expect((await readFile(join(dir, "up.qcow2"))).equals(up)).toBe(true);
    });

    it("uploadImage resumes from what the server holds and is refused on a name of other content", async () => {
      const src = join(dir, "..", `src-${Date.now()}.bin`);
      const up = await randomFile(src, 700_000);
      // A first try cut after 200 000 bytes.
      await put("client.qcow2", up.subarray(0, 200_000), { "x-image-sha256": sha(up), "content-range": `bytes 0-199999/${up.length}` });
      const seen: number[] = [];
      const r = await uploadImage({ url: server.url, name: "client.qcow2", path: src, onProgress: (p) => seen.push(p.bytesDone) });
      expect(r).toMatchObject({ sha256: sha(up), created: true });
      expect(seen[0]).toBeGreaterThan(200_000); // the held bytes were not sent again
      expect((await readFile(join(dir, "client.qcow2"))).equals(up)).toBe(true);
      await randomFile(src, 1000);
      await expect(uploadImage({ url: server.url, name: "client.qcow2", path: src })).rejects.toThrow(/never overwritten/);
    });

    it("refuses a body whose sha256 is not the one promised, and keeps nothing", async () => {
      const up = Buffer.alloc(1000, 3);
      const res = await put("bad.qcow2", up, { "x-image-sha256": "a".repeat(64) });
      expect(res.status).toBe(400);
      expect((await res.json()) as { message: string }).toMatchObject({ message: expect.stringContaining("sha256") });
      expect((await readdir(dir)).filter((f) => f.includes("bad"))).toEqual([]);
    });

    it("resumes from the bytes held, tells them on HEAD/GET, and refuses a wrong offset", async () => {
      const up = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
      const h = { "x-image-sha256": sha(up) };
      const first = await put("r.qcow2", up.subarray(0, 100_000), { ...h, "content-range": `bytes 0-99999/${up.length}` });
      expect(first.status).toBe(202);
      expect(await first.json()).toMatchObject({ held_bytes: 100_000, done: false });
      const head = await fetch(`${server.url}/uploads/r.qcow2`, { method: "HEAD" });
      expect(head.headers.get("upload-offset")).toBe("100000");
      expect(await (await fetch(`${server.url}/uploads/r.qcow2`)).json()).toMatchObject({ held_bytes: 100_000, sha256: sha(up) });
      const wrong = await put("r.qcow2", up.subarray(50_000), { ...h, "content-range": `bytes 50000-${up.length - 1}/${up.length}` });
      expect(wrong.status).toBe(416);
      const rest = await put("r.qcow2", up.subarray(100_000), { ...h, "content-range": `bytes 100000-${up.length - 1}/${up.length}` });
      expect(rest.status).toBe(201);
      expect((await readFile(join(dir, "r.qcow2"))).equals(up)).toBe(true);
      expect((await stat(join(dir, ".blobs", sha(up)))).nlink).toBe(2);
      expect((await fetch(`${server.url}/uploads/r.qcow2`)).status).toBe(404);
    });
  });
});
