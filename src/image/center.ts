/**
 * A node's image center, as DBC's `images/*` drives it: the image servers it knows, the images in
 * its cache, and the transfers between the two (one download and one upload per image name at a
 * time, each with its progress, stoppable; a stopped or cut download resumes where it stopped).
 * How bytes move is the transports' business (an HTTP batu server, an rsync daemon); this decides
 * what may happen: never a second transfer of one name, never a download over an image the node
 * has, never the delete of an image a task boots from or one being transferred, and a renter's own
 * images (snapshots) only by that renter.
 */
import { EventEmitter } from "node:events";
import { existsSync, readdirSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { IMAGE_NAME_RE } from "../vm/images.js";
import { imageOwner } from "./names.js";
import type { ImageServer } from "./servers.js";

export type TransferDirection = "download" | "upload";

/** One image on a server or on this node, as DBC lists it. */
export interface ListedImage {
  name: string;
  sizeBytes: number;
  sha256?: string;
}

/** How images move to and from one kind of server. */
export interface ImageTransport {
  list(server: ImageServer): Promise<ListedImage[]>;
  /** Brings `name` into `destDir` (complete and verified when it resolves; resumable when cut). */
  download(server: ImageServer, name: string, destDir: string, opts: TransferOptions): Promise<void>;
  /** Sends `name` (and its sidecar) from `srcDir` to the server; the server never overwrites another image. */
  upload(server: ImageServer, name: string, srcDir: string, opts: TransferOptions): Promise<void>;
}

export interface TransferOptions {
  onProgress: (done: number, total: number) => void;
  signal: AbortSignal;
}

/** A transfer's state as DBC's `downloadprogress`/`uploadprogress` answer it. */
export interface TransferState {
  name: string;
  direction: TransferDirection;
  serverId: string;
  status: "downloading" | "uploading" | "done" | "stopped" | "failed";
  /** 0…1 */
  fraction: number;
  error: string | null;
}

/** Bytes a transfer moved since its last report (the center's "bytes" event). */
export interface TransferredBytes {
  direction: TransferDirection;
  bytes: number;
}

export class ImageCenterError extends Error {
  constructor(
    readonly field: "image_server" | "image_filename",
    message: string,
    /** 409: the image is busy (in use, transferring) rather than the request wrong. */
    readonly conflict = false,
  ) {
    super(message);
    this.name = "ImageCenterError";
  }
}

export interface ImageCenterOptions {
  /** The node's image cache (`<data>/images`). */
  cache: string;
  /** Folders of images shipped with batu (build/images): listed and bootable, never transferred or deleted here. */
  shipped?: readonly string[];
  /** The servers this node knows now (the configured ones, and the group's master). */
  servers: () => ImageServer[];
  transports: Record<ImageServer["kind"], ImageTransport>;
  /** What keeps an image: `the image of task X`, or undefined when nothing does. */
  inUse: (name: string) => string | undefined;
}

interface Transfer extends TransferState {
  abort: AbortController;
  done: Promise<void>;
}

export class ImageCenter extends EventEmitter {
  private readonly transfers = new Map<string, Transfer>();

  constructor(private readonly opts: ImageCenterOptions) {
    super();
    // One listener per open event stream.
    this.setMaxListeners(0);
  }

  serverIds(): string[] {
    return this.opts.servers().map((s) => s.id);
  }

  server(id: unknown): ImageServer {
    const server = typeof id === "string" ? this.opts.servers().find((s) => s.id === id) : undefined;
    if (!server) throw new ImageCenterError("image_server", "image_server not exist");
    return server;
  }

  /** An image server's images (`*.qcow2`). */
  listServer(id: unknown): Promise<ListedImage[]> {
    const server = this.server(id);
    return this.opts.transports[server.kind].list(server);
  }

  /** The images in this node's cache that `renter` may see: the operator's, and its own (null: the operator sees all). */
  listLocal(renter: string | null): Array<ListedImage & { owner: string | null }> {
    const images = new Map<string, ListedImage & { owner: string | null }>();
    for (const dir of [this.opts.cache, ...(this.opts.shipped ?? [])]) {
      const files = existsSync(dir) ? readdirSync(dir) : [];
      for (const file of files) {
        if (images.has(file) || !IMAGE_NAME_RE.test(file) || !file.endsWith(".qcow2")) continue;
        const owner = imageOwner(dir, file);
        if (renter !== null && owner !== null && owner !== renter) continue;
        images.set(file, { name: file, sizeBytes: statSync(join(dir, file)).size, owner });
      }
    }
    return [...images.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Starts bringing `name` from server `serverId` into the cache; refused when the node has it or moves it already. */
  download(serverId: unknown, name: unknown): TransferState {
    const server = this.server(serverId);
    const image = this.checkName(name);
    if (existsSync(join(this.opts.cache, image))) throw new ImageCenterError("image_filename", `image ${image} is on this node already`, true);
    this.checkIdle(image);
    return this.start(image, "download", server, (opts) => this.opts.transports[server.kind].download(server, image, this.opts.cache, opts));
  }

  /** Starts sending `name` to server `serverId`; `renter` (null: the operator) may send the operator's images and its own. */
  upload(serverId: unknown, name: unknown, renter: string | null): TransferState {
    const server = this.server(serverId);
    const image = this.checkName(name);
    this.checkExists(image, renter);
    this.checkIdle(image);
    return this.start(image, "upload", server, (opts) => this.opts.transports[server.kind].upload(server, image, this.opts.cache, opts));
  }

  /** The state of `name`'s last transfer in `direction`, or undefined when there was none since the agent started. */
  progress(name: unknown, direction: TransferDirection): TransferState | undefined {
    const t = this.transfers.get(key(this.checkName(name), direction));
    return t && view(t);
  }

  /** Whether a transfer of `name` (either way) runs now. */
  busy(name: string): boolean {
    return (["download", "upload"] as const).some((d) => {
      const t = this.transfers.get(key(name, d));
      return t !== undefined && (t.status === "downloading" || t.status === "uploading");
    });
  }

  /** Resolves with `name`'s transfer in `direction` once it has ended (at once when none runs). */
  async finished(name: string, direction: TransferDirection): Promise<TransferState | undefined> {
    const t = this.transfers.get(key(name, direction));
    if (!t) return undefined;
    await t.done.catch(() => undefined);
    return view(t);
  }

  /** Stops `name`'s transfer in `direction` (a download keeps what it has, for a later resume). */
  async stop(name: unknown, direction: TransferDirection): Promise<void> {
    const image = this.checkName(name);
    const t = this.transfers.get(key(image, direction));
    if (!t || (t.status !== "downloading" && t.status !== "uploading")) {
      throw new ImageCenterError("image_filename", `image ${image} is not ${direction === "download" ? "downloading" : "uploading"}`);
    }
    t.abort.abort();
    await t.done.catch(() => undefined);
  }

  /** Deletes an image of the cache: refused while a task boots from it or it is transferred, and a renter only deletes its own. */
  async delete(name: unknown, renter: string | null): Promise<void> {
    const image = this.checkName(name);
    const owner = this.checkExists(image, renter);
    if (renter !== null && owner !== renter) throw new ImageCenterError("image_filename", `image ${image} is the operator's: only the operator deletes it`, true);
    this.checkIdle(image);
    const use = this.opts.inUse(image);
    if (use) throw new ImageCenterError("image_filename", `image ${image} is ${use}`, true);
    await rm(join(this.opts.cache, image), { force: true });
    await rm(join(this.opts.cache, image.replace(/\.qcow2$/, ".json")), { force: true });
  }

  /** Resolves once every transfer under way has ended (for a clean agent stop). */
  async close(): Promise<void> {
    for (const t of this.transfers.values()) t.abort.abort();
    await Promise.all([...this.transfers.values()].map((t) => t.done.catch(() => undefined)));
  }

  private start(name: string, direction: TransferDirection, server: ImageServer, run: (opts: TransferOptions) => Promise<void>): TransferState {
    const abort = new AbortController();
    const t: Transfer = {
      name,
      direction,
      serverId: server.id,
      status: direction === "download" ? "downloading" : "uploading",
      fraction: 0,
      error: null,
      abort,
      done: Promise.resolve(),
    };
    this.transfers.set(key(name, direction), t);
    let told = 0;
    // The first figure a transport reports is where it starts (a resumed download's pieces kept
    // from before): only what moves after it counts as bytes transferred.
    let counted: number | undefined;
    const onProgress = (done: number, total: number) => {
      if (counted !== undefined && done > counted) this.emit("bytes", { direction, bytes: done - counted } satisfies TransferredBytes);
      counted = Math.max(counted ?? done, done);
      t.fraction = total > 0 ? Math.min(1, done / total) : 0;
      // Listeners hear each whole percent, not each chunk.
      const percent = Math.floor(t.fraction * 100);
      if (percent !== told) {
        told = percent;
        this.emit("transfer", view(t));
      }
    };
    this.emit("transfer", view(t));
    t.done = run({ onProgress, signal: abort.signal }).then(
      () => {
        t.status = "done";
        t.fraction = 1;
      },
      (e: unknown) => {
        t.status = abort.signal.aborted ? "stopped" : "failed";
        t.error = abort.signal.aborted ? null : e instanceof Error ? e.message : String(e);
      },
    );
    void t.done.then(() => this.emit("transfer", view(t)));
    return view(t);
  }

  private checkName(name: unknown): string {
    if (typeof name !== "string" || name === "") throw new ImageCenterError("image_filename", "image_filename is empty");
    if (!IMAGE_NAME_RE.test(name) || !name.endsWith(".qcow2")) throw new ImageCenterError("image_filename", `image_filename is invalid: ${JSON.stringify(name).slice(0, 140)}`);
    return name;
  }

  private checkIdle(name: string): void {
    if (this.busy(name)) throw new ImageCenterError("image_filename", `image ${name} is being transferred`, true);
  }

  /** The image's owner; refuses an image not here, or one of another renter (told it does not exist). */
  private checkExists(name: string, renter: string | null): string | null {
    const missing = new ImageCenterError("image_filename", `'image_filename' is not exist: ${name}`);
    if (!existsSync(join(this.opts.cache, name))) throw missing;
    const owner = this.ownerOf(name);
    if (renter !== null && owner !== null && owner !== renter) throw missing;
    return owner;
  }

  private ownerOf(name: string): string | null {
    return imageOwner(this.opts.cache, name);
  }
}

const key = (name: string, direction: TransferDirection) => `${direction}:${name}`;

const view = (t: Transfer): TransferState => ({ name: t.name, direction: t.direction, serverId: t.serverId, status: t.status, fraction: t.fraction, error: t.error });
