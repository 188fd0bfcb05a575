import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ImageCenter, type ImageTransport, type TransferOptions } from "./center.js";
import type { ImageServer } from "./servers.js";

/*
 * The image center's rules over a transport that moves bytes between two folders (the real ones,
 * HTTP and rsync, are tested against real servers in their own files).
 */
let cache: string;
let remote: string;
let inUse: Map<string, string>;
let gate: { open: () => void; promise: Promise<void> };
const SERVER: ImageServer = { id: "ID_1", kind: "rsync", host: "127.0.0.1", port: 873, module: "images" };

function newGate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { open, promise };
}

const folderTransport = (): ImageTransport => ({
  list: async () => [{ name: "remote.qcow2", sizeBytes: 3 * 2 ** 30 }],
  download: async (_s, name, dest, opts: TransferOptions) => {
    opts.onProgress(1, 2);
    await Promise.race([gate.promise, new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(new Error("aborted"))))]);
    writeFileSync(join(dest, name), "image");
    opts.onProgress(2, 2);
  },
  upload: async (_s, name, _src, opts) => {
    writeFileSync(join(remote, name), "copy");
    opts.onProgress(1, 1);
  },
});

beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), "batu-center-"));
  remote = mkdtempSync(join(tmpdir(), "batu-center-remote-"));
  inUse = new Map();
  gate = newGate();
});
afterEach(() => {
  rmSync(cache, { recursive: true, force: true });
  rmSync(remote, { recursive: true, force: true });
});

const center = () =>
  new ImageCenter({ cache, servers: () => [SERVER], transports: { rsync: folderTransport(), http: folderTransport() }, inUse: (n) => inUse.get(n) });

describe("ImageCenter", () => {
  it("downloads with progress to done; one transfer of a name at a time; never over an image the node has", async () => {
    const c = center();
    const heard: string[] = [];
    c.on("transfer", (t) => heard.push(`${t.status} ${Math.floor(t.fraction * 100)}%`));
    expect(c.download("ID_1", "remote.qcow2")).toMatchObject({ status: "downloading" });
    expect(c.progress("remote.qcow2", "download")).toMatchObject({ status: "downloading", fraction: 0.5 });
    expect(() => c.download("ID_1", "remote.qcow2")).toThrow(/is being transferred/);
    gate.open();
    await new Promise((r) => setTimeout(r, 10));
    expect(c.progress("remote.qcow2", "download")).toMatchObject({ status: "done", fraction: 1 });
    expect(heard).toEqual(["downloading 0%", "downloading 50%", "downloading 100%", "done 100%"]);
    expect(() => c.download("ID_1", "remote.qcow2")).toThrow(/on this node already/);
  });

  it("stops a download; an unknown server or a bad name is refused naming the field", async () => {
    const c = center();
    c.download("ID_1", "remote.qcow2");
    await c.stop("remote.qcow2", "download");
    expect(c.progress("remote.qcow2", "download")).toMatchObject({ status: "stopped", error: null });
    await expect(c.stop("remote.qcow2", "download")).rejects.toThrow(/is not downloading/);
    expect(() => c.download("ID_9", "x.qcow2")).toThrow(expect.objectContaining({ field: "image_server", message: "image_server not exist" }));
    expect(() => c.download("ID_1", "../etc/passwd")).toThrow(expect.objectContaining({ field: "image_filename" }));
    expect(() => c.download("ID_1", "")).toThrow(expect.objectContaining({ message: "image_filename is empty" }));
  });

  it("a renter sees, sends and deletes its own images and the operator's; deletes only its own; never one in use", async () => {
    writeFileSync(join(cache, "ops.qcow2"), "o");
    writeFileSync(join(cache, "snap-a.qcow2"), "a");
    writeFileSync(join(cache, "snap-a.json"), JSON.stringify({ owner: "alice" }));
    writeFileSync(join(cache, "snap-b.qcow2"), "b");
    writeFileSync(join(cache, "snap-b.json"), JSON.stringify({ owner: "bob" }));
    const c = center();
    expect(c.listLocal("alice").map((i) => i.name)).toEqual(["ops.qcow2", "snap-a.qcow2"]);
    // Shipped images list too (after the cache's, a name in both shows once).
    writeFileSync(join(remote, "shipped.qcow2"), "s");
    writeFileSync(join(remote, "ops.qcow2"), "other");
    const withShipped = new ImageCenter({ cache, shipped: [remote], servers: () => [SERVER], transports: { rsync: folderTransport(), http: folderTransport() }, inUse: () => undefined });
    expect(withShipped.listLocal("alice").map((i) => [i.name, i.sizeBytes])).toEqual([["ops.qcow2", 1], ["shipped.qcow2", 1], ["snap-a.qcow2", 1]]);
    expect(c.listLocal(null).map((i) => [i.name, i.owner])).toEqual([["ops.qcow2", null], ["snap-a.qcow2", "alice"], ["snap-b.qcow2", "bob"]]);
    expect(() => c.upload("ID_1", "snap-b.qcow2", "alice")).toThrow("'image_filename' is not exist: snap-b.qcow2");
    c.upload("ID_1", "snap-a.qcow2", "alice");
    await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(join(remote, "snap-a.qcow2"))).toBe(true);
    await expect(c.delete("ops.qcow2", "alice")).rejects.toThrow(/only the operator deletes it/);
    await expect(c.delete("snap-b.qcow2", "alice")).rejects.toThrow(/is not exist/);
    inUse.set("snap-a.qcow2", "the image of task t1");
    await expect(c.delete("snap-a.qcow2", "alice")).rejects.toThrow("image snap-a.qcow2 is the image of task t1");
    inUse.clear();
    await c.delete("snap-a.qcow2", "alice");
    expect(existsSync(join(cache, "snap-a.qcow2")) || existsSync(join(cache, "snap-a.json"))).toBe(false);
    await c.delete("ops.qcow2", null);
  });
});
