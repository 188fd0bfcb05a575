import { existsSync, readFileSync } from "node:fs";
import { copyFile, link, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

/** The metadata sidecar `<image>.json` beside an image: how it boots and how to tell it is up. */
export const ImageMeta = Type.Object({
  name: Type.String(),
  format: Type.Union([Type.Literal("qcow2"), Type.Literal("raw")]),
  boot: Type.Union([Type.Literal("kernel"), Type.Literal("disk")]),
  kernel: Type.Optional(Type.String()),
  initrd: Type.Optional(Type.String()),
  cmdline: Type.Optional(Type.String()),
  os: Type.Optional(Type.String()),
  /** A line the guest prints on its serial console once it is usable. */
  ready_marker: Type.Optional(Type.String()),
  login_user: Type.Optional(Type.String()),
  /** The guest runs cloud-init and expects a NoCloud seed drive (src/storage/cloud-init-seed.ts). */
  cloud_init: Type.Optional(Type.Boolean()),
  /** A renter's own image (a snapshot of its task): only its tasks may boot it. Absent: anyone's. */
  owner: Type.Optional(Type.String()),
});
export type ImageMeta = Static<typeof ImageMeta>;

export interface ResolvedImage {
  name: string;
  path: string;
  format: "qcow2" | "raw";
  os: string;
  kernel?: { kernelPath: string; initrdPath?: string; cmdline: string };
  readyMarker: string | null;
  loginUser: string;
  /** Set for a renter's own image (a snapshot): only that renter's tasks boot it. */
  owner?: string;
  /** The guest runs cloud-init: each boot hands it a NoCloud seed (host name, login user and password). */
  cloudInit: boolean;
}

export const IMAGE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const DEMO_IMAGE = "batu-demo.qcow2";

/** Why an image cannot be used, in DBC's words where DBC has them. */
export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageError";
  }
}

/**
 * The images this node can boot: files in the node's image cache (`dirs[0]`, `<data-dir>/images`)
 * and shipped images (the project's `build/images`), first match wins. An image without a sidecar
 * boots from its disk with SeaBIOS.
 */
export class ImageCatalog {
  constructor(readonly dirs: readonly string[]) {}

  /**
   * Brings a shipped image into the node's cache before a VM is based on it, so that rebuilding
   * the shipped image never changes the base under an existing VM's overlay. Hard links when the
   * filesystem allows (the build replaces its outputs by rename, so a link keeps the old bytes).
   */
  async importShipped(name: string): Promise<void> {
    const cache = this.dirs[0];
    if (!cache || existsSync(join(cache, name))) return;
    const image = this.resolve(name);
    const from = image.path.slice(0, image.path.length - name.length);
    const files = [name, name.replace(/\.qcow2$/, ".json")];
    if (image.kernel) {
      files.push(image.kernel.kernelPath.slice(from.length));
      if (image.kernel.initrdPath) files.push(image.kernel.initrdPath.slice(from.length));
    }
    // Sidecar and boot files first, the image last: the image's presence marks the import done.
    for (const file of files.slice(1).concat(files[0]!)) {
      const src = join(from, file);
      if (!existsSync(src)) continue;
      const tmp = join(cache, `.${file}.${process.pid}.${Date.now()}.tmp`);
      try {
        await link(src, tmp);
      } catch {
        await copyFile(src, tmp);
      }
      try {
        await rename(tmp, join(cache, file));
      } finally {
        await rm(tmp, { force: true });
      }
    }
  }

  resolve(name: string): ResolvedImage {
    if (!name) throw new ImageError("image_name is empty");
    if (!IMAGE_NAME_RE.test(name)) throw new ImageError(`image_name is invalid: ${JSON.stringify(name)}`);
    if (!name.endsWith(".qcow2")) throw new ImageError("'image_name' extension name is invalid");
    for (const dir of this.dirs) {
      const path = join(dir, name);
      if (!existsSync(path)) continue;
      return this.describe(dir, name, path);
    }
    throw new ImageError(`'image_name' is not exist: ${name}`);
  }

  private describe(dir: string, name: string, path: string): ResolvedImage {
    const sidecar = join(dir, name.replace(/\.qcow2$/, ".json"));
    if (!existsSync(sidecar)) {
      return { name, path, format: "qcow2", os: "linux", readyMarker: null, loginUser: "root", cloudInit: false };
    }
    const meta: unknown = JSON.parse(readFileSync(sidecar, "utf8"));
    if (!Value.Check(ImageMeta, meta)) throw new ImageError(`image ${name} has a broken metadata file`);
    const image: ResolvedImage = {
      name,
      path,
      format: meta.format,
      os: meta.os ?? "linux",
      readyMarker: meta.ready_marker ?? null,
      loginUser: meta.login_user ?? "root",
      ...(meta.owner !== undefined ? { owner: meta.owner } : {}),
      cloudInit: meta.cloud_init === true,
    };
    if (meta.boot === "kernel") {
      if (!meta.kernel || !meta.cmdline) throw new ImageError(`image ${name}: kernel boot without kernel or cmdline`);
      image.kernel = {
        kernelPath: join(dir, meta.kernel),
        cmdline: meta.cmdline,
        ...(meta.initrd ? { initrdPath: join(dir, meta.initrd) } : {}),
      };
    }
    return image;
  }
}
