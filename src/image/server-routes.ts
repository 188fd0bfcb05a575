import type { Stats } from "node:fs";
import { open, readFile, rename, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { pieceCount, pieceSpan } from "./digest.js";
import { ImageTransferError } from "./errors.js";
import { cachedDigest, parseMeta, type ImageLibrary } from "./library.js";
import { assertImageName, sidecarName } from "./names.js";
import { heldPieces } from "./part-state.js";
import { parseContentRange, parseRange } from "./range.js";
import { UploadReceiver } from "./upload.js";

/** Where an image server's routes live unless told otherwise. */
export const IMAGE_SERVER_PREFIX = "/image-server/v1";

export type ImageAction = "list" | "read" | "write";

export interface ImageServerRoutesOptions {
  library: ImageLibrary;
  /**
   * Throws to refuse; the plugin makes no decision of its own about who may do what. `name`: the
   * image read or written (absent for the list).
   */
  authorize: (req: FastifyRequest, action: ImageAction, name?: string) => void | Promise<void>;
  /** Whether the list shows image `name` to this request (default: every image). */
  visible?: (req: FastifyRequest, name: string) => boolean | Promise<boolean>;
  /** Path prefix of every route; default IMAGE_SERVER_PREFIX. */
  basePath?: string;
  /** Chunk size of file reads sent to a socket; 1 MiB (64 KiB, fs's default, costs ~15% on loopback). */
  readChunkBytes?: number;
}

const NameParams = Type.Object({ name: Type.String({ description: "An image file name ending in .qcow2", examples: ["debian-12.qcow2"] }) });
const ImageListReply = Type.Array(
  Type.Object({
    name: Type.String({ description: "File name", examples: ["debian-12.qcow2"] }),
    size_bytes: Type.Integer({ description: "Size in bytes", examples: [2147483648] }),
    sha256: Type.String({ description: "sha256 of the whole file, hex", examples: ["e3b0c442..."] }),
  }),
);
const ManifestReply = Type.Object({
  name: Type.String({ description: "File name" }),
  sizeBytes: Type.Integer({ description: "Size in bytes" }),
  sha256: Type.String({ description: "sha256 of the whole file, hex" }),
  pieceBytes: Type.Integer({ description: "Bytes per piece (the last one shorter)" }),
  pieces: Type.Array(Type.String(), { description: "sha256 of each piece, hex" }),
});
const UploadReply = Type.Object({
  name: Type.String({ description: "File name" }),
  held_bytes: Type.Integer({ description: "Bytes the server holds of this upload" }),
  done: Type.Boolean({ description: "The image is complete and verified" }),
  sha256: Type.Optional(Type.String({ description: "sha256 the upload promised (or has), hex" })),
});

const isMissing = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === "ENOENT";

/** The bytes of pieces `first` to `last`, back to back. */
function piecesSpan(m: { sizeBytes: number; pieceBytes: number }, first: number, last: number): { start: number; end: number } {
  return { start: pieceSpan(m, first).start, end: pieceSpan(m, last).end };
}

/** Opens a file to serve, or not_found. */
async function openOrNotFound(path: string, what: string): Promise<FileHandle> {
  try {
    return await open(path, "r");
  } catch (e) {
    if (isMissing(e)) throw new ImageTransferError("not_found", `no such ${what}`);
    throw e;
  }
}

/**
 * Serves bytes of an open file with HTTP's caching and range rules: strong ETag (a sha256),
 * If-None-Match, If-Range, one Range (206, or 416 with `bytes * /size`), HEAD without a body.
 * Streams from `window.start` to `window.end` (exclusive) of the file; ranges are within the
 * window. Takes ownership of `handle`.
 */
async function sendFile(req: FastifyRequest, reply: FastifyReply, handle: FileHandle, etag: string | null, window: { start: number; end: number }, chunkBytes: number): Promise<FastifyReply> {
  let streaming = false;
  try {
    const size = window.end - window.start;
    void reply.header("accept-ranges", "bytes");
    if (etag) void reply.header("etag", etag);
    const inm = req.headers["if-none-match"];
    if (etag && inm && (inm === "*" || inm.split(",").some((t) => t.trim() === etag))) return reply.code(304).send();
    const ifRange = req.headers["if-range"] as string | undefined;
    // If-Range with a date (or another tag) means "the whole file": only a strong tag match keeps the range.
    const rangeOk = ifRange === undefined || (etag !== null && ifRange.trim() === etag);
    const span = rangeOk ? parseRange(req.headers.range, size) : null;
    if (span === "unsatisfiable") {
      return reply.code(416).header("content-range", `bytes */${size}`).type("application/json").send({ message: `range ${req.headers.range ?? ""} is outside the ${size} bytes` });
    }
    const start = span ? span.start : 0;
    const end = span ? span.end : size - 1;
    if (span) void reply.code(206).header("content-range", `bytes ${start}-${end}/${size}`);
    void reply.header("content-type", "application/octet-stream").header("content-length", String(end - start + 1));
    if (req.method === "HEAD" || end < start) return reply.send();
    streaming = true;
    return reply.send(handle.createReadStream({ start: window.start + start, end: window.start + end, highWaterMark: chunkBytes }));
  } finally {
    if (!streaming) await handle.close();
  }
}

/** The digest of the very file `handle` has open (a rename between open and digest retries). */
async function digestOfOpen(library: ImageLibrary, name: string, st: Stats) {
  const d = await library.digest(name);
  return d.stat.ino === st.ino && d.stat.mtimeMs === st.mtimeMs && d.stat.size === st.size ? d : null;
}

/**
 * An image server's HTTP interface (Fastify plugin; register it without fastify-plugin so its
 * `application/octet-stream` parser, which hands the raw body stream to the upload route, stays
 * inside it). Routes, under `basePath`:
 *   GET  /images                      list: [{name, size_bytes, sha256}]
 *   GET|HEAD /images/:name            the file (Range, ETag, If-Range)
 *   GET  /images/:name/manifest       the piece manifest
 *   GET  /images/:name/meta           the sidecar json (404 when none)
 *   GET  /images/:name/files/:file    a kernel/initrd the sidecar names (only those)
 *   GET  /pieces/:name/:index         verified pieces (?count=N: N from :index on), of a complete image or of a download in progress
 *   PUT  /images/:name/meta           the sidecar, sent before the image
 *   PUT  /images/:name                upload (x-image-sha256; Content-Range to resume)
 *   GET|HEAD /uploads/:name           bytes held of an upload in progress
 * Refusals are ImageTransferErrors, whose `statusCode` the app's error handler uses.
 */
export const imageServerRoutes: FastifyPluginAsyncTypebox<ImageServerRoutesOptions> = async (app, opts) => {
  const { library, authorize } = opts;
  const base = (opts.basePath ?? IMAGE_SERVER_PREFIX).replace(/\/$/, "");
  const chunkBytes = opts.readChunkBytes ?? 1024 * 1024;
  const uploads = new UploadReceiver(library);

  // Uploads are streamed to disk as they come: the parser passes the raw stream, so no bodyLimit applies.
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));

  app.get(`${base}/images`, { schema: { summary: "The images this server holds", tags: ["images"], response: { 200: ImageListReply } } }, async (req) => {
    await authorize(req, "list");
    const shown = [];
    for (const e of await library.list()) if (!opts.visible || (await opts.visible(req, e.name))) shown.push({ name: e.name, size_bytes: e.sizeBytes, sha256: e.sha256 });
    return shown;
  });

  const serveImage = async (req: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
    await authorize(req, "read", req.params.name);
    const name = assertImageName(req.params.name);
    for (let attempt = 0; attempt < 3; attempt++) {
      const handle = await openOrNotFound(library.path(name), `image: ${name}`);
      let owned = true;
      try {
        const st = await handle.stat();
        const d = await digestOfOpen(library, name, st);
        if (!d) continue; // replaced while we looked: look again
        owned = false;
        return await sendFile(req, reply, handle, `"${d.sha256}"`, { start: 0, end: st.size }, chunkBytes);
      } finally {
        if (owned) await handle.close();
      }
    }
    throw new ImageTransferError("busy", `image ${name} keeps changing`);
  };
  const fileSchema = { params: NameParams, tags: ["images"] };
  app.get(`${base}/images/:name`, { exposeHeadRoute: false, schema: { ...fileSchema, summary: "An image file (Range, ETag, If-Range)" } }, serveImage);
  app.head(`${base}/images/:name`, { schema: { ...fileSchema, summary: "An image file's size and ETag" } }, serveImage);

  app.get(`${base}/images/:name/manifest`, { schema: { params: NameParams, tags: ["images"], summary: "The piece manifest of an image", response: { 200: ManifestReply } } }, async (req) => {
    await authorize(req, "read", req.params.name);
    return library.manifest(req.params.name);
  });

  app.get(`${base}/images/:name/meta`, { schema: { params: NameParams, tags: ["images"], summary: "The image's metadata sidecar (how it boots)" } }, async (req) => {
    await authorize(req, "read", req.params.name);
    const name = assertImageName(req.params.name);
    if (!(await library.entry(name))) throw new ImageTransferError("not_found", `no such image: ${name}`);
    const meta = await library.meta(name);
    if (!meta) throw new ImageTransferError("not_found", `image ${name} has no metadata`);
    return meta;
  });

  app.get(
    `${base}/images/:name/files/:file`,
    { exposeHeadRoute: true, schema: { params: Type.Object({ name: Type.String(), file: Type.String() }), tags: ["images"], summary: "A kernel or initrd the image's sidecar names" } },
    async (req, reply) => {
      await authorize(req, "read", req.params.name);
      const name = assertImageName(req.params.name);
      const { file } = req.params;
      if (!(await library.bootFiles(name)).includes(file)) throw new ImageTransferError("not_found", `image ${name} names no boot file ${file}`);
      const path = join(library.dir, file);
      const handle = await openOrNotFound(path, `file: ${file}`);
      let owned = true;
      try {
        const st = await handle.stat();
        const d = await cachedDigest(path, join(library.dir, `.${file}.digest.json`), library.pieceBytes);
        owned = false;
        return await sendFile(req, reply, handle, d.stat.ino === st.ino ? `"${d.sha256}"` : null, { start: 0, end: st.size }, chunkBytes);
      } finally {
        if (owned) await handle.close();
      }
    },
  );

  app.get(
    `${base}/pieces/:name/:index`,
    {
      schema: {
        // Digits, not integers: the agent's validator does not coerce strings (a path or query is text).
        params: Type.Object({ name: Type.String(), index: Type.String({ pattern: "^[0-9]{1,9}$" }) }),
        querystring: Type.Object({
          sha256: Type.Optional(Type.String({ description: "The whole image's sha256 the asker follows: 404 when this node holds other content" })),
          piece_bytes: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,9}$", description: "The asker's piece size; default this server's" })),
          count: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,3}$", description: "Pieces from :index on, back to back in one reply (default 1): one request per run of pieces, not per piece" })),
        }),
        tags: ["images"],
        summary: "Verified pieces, from a complete image or a download in progress (404 when one is not held)",
      },
    },
    async (req, reply) => {
      await authorize(req, "read", req.params.name);
      const name = assertImageName(req.params.name);
      const index = Number(req.params.index);
      const count = Number(req.query.count ?? 1);
      const last = index + count - 1;
      const want = { sha256: req.query.sha256, piece_bytes: req.query.piece_bytes === undefined ? undefined : Number(req.query.piece_bytes) };
      // A complete image serves any piece size by range.
      const complete = await library.entry(name).catch(() => null);
      if (complete && (!want.sha256 || want.sha256 === complete.sha256)) {
        const pieceBytes = want.piece_bytes ?? library.pieceBytes;
        if (last >= pieceCount(complete.sizeBytes, pieceBytes)) throw new ImageTransferError("range_not_satisfiable", `image ${name} has no piece ${last}`);
        const span = piecesSpan({ sizeBytes: complete.sizeBytes, pieceBytes }, index, last);
        for (let attempt = 0; attempt < 3; attempt++) {
          const handle = await openOrNotFound(library.path(name), `image: ${name}`);
          const st = await handle.stat();
          const d = await digestOfOpen(library, name, st).catch(() => null);
          if (!d || d.sha256 !== complete.sha256) {
            await handle.close();
            continue;
          }
          const tag = d.pieceBytes === pieceBytes && count === 1 ? d.pieces[index] : undefined;
          if (tag) void reply.header("x-piece-sha256", tag);
          return sendFile(req, reply, handle, tag ? `"${tag}"` : null, span, chunkBytes);
        }
        throw new ImageTransferError("busy", `image ${name} keeps changing`);
      }
      const held = await heldPieces(library.dir, name);
      if (
        !held ||
        (want.sha256 && want.sha256 !== held.manifest.sha256) ||
        (want.piece_bytes && want.piece_bytes !== held.manifest.pieceBytes) ||
        !Array.from({ length: count }, (_, k) => index + k).every((i) => held.done.has(i))
      ) {
        throw new ImageTransferError("not_found", `piece ${count === 1 ? index : `${index}-${last}`} of ${name} is not held here`);
      }
      const tag = count === 1 ? held.manifest.pieces[index]! : null;
      const handle = await openOrNotFound(held.partPath, `piece ${index} of ${name}`);
      if (tag) void reply.header("x-piece-sha256", tag);
      return sendFile(req, reply, handle, tag && `"${tag}"`, piecesSpan(held.manifest, index, last), chunkBytes);
    },
  );

  app.put(
    `${base}/images/:name`,
    {
      schema: {
        params: NameParams,
        headers: Type.Object({
          "x-image-sha256": Type.String({ pattern: "^[0-9a-fA-F]{64}$", description: "sha256 of the whole image, checked before it is kept" }),
          "content-range": Type.Optional(Type.String({ description: "bytes <from>-<to>/<total>: resume an upload from the bytes held" })),
        }),
        tags: ["images"],
        summary: "Upload an image (application/octet-stream), resumable; never overwrites one of other content",
        response: { 200: UploadReply, 201: UploadReply, 202: UploadReply },
      },
    },
    async (req, reply) => {
      await authorize(req, "write", req.params.name);
      const name = assertImageName(req.params.name);
      const body = req.body as Readable | undefined;
      if (!body || typeof (body as Readable).pipe !== "function") throw new ImageTransferError("bad_request", "body: send the image as application/octet-stream");
      let range: ReturnType<typeof parseContentRange>;
      try {
        range = parseContentRange(req.headers["content-range"]);
      } catch (e) {
        throw new ImageTransferError("bad_request", (e as Error).message);
      }
      const r = await uploads.receive(name, body, { sha256: req.headers["x-image-sha256"], range });
      if (!r.done) return reply.code(202).send({ name, held_bytes: r.heldBytes, done: false });
      return reply.code(r.created ? 201 : 200).send({ name, held_bytes: r.entry.sizeBytes, done: true, sha256: r.entry.sha256 });
    },
  );

  // The sidecar goes up before the image (whose arrival marks the upload complete): how it boots, and
  // whose it is. Never changed under an image that is here.
  app.put(
    `${base}/images/:name/meta`,
    {
      bodyLimit: 64 * 1024,
      schema: { params: NameParams, body: Type.Object({}, { additionalProperties: true }), tags: ["images"], summary: "Upload an image's metadata sidecar, before the image" },
    },
    async (req) => {
      await authorize(req, "write", req.params.name);
      const name = assertImageName(req.params.name);
      const text = JSON.stringify(req.body);
      parseMeta(name, text);
      const path = join(library.dir, sidecarName(name));
      const existing = await readFile(path, "utf8").catch(() => null);
      if (existing !== null && (await library.entry(name).catch(() => null))) {
        if (existing === text) return { name, done: true };
        throw new ImageTransferError("conflict", `image ${name} is here with other metadata`);
      }
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, path);
      return { name, done: true };
    },
  );

  const uploadHeld = async (req: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
    await authorize(req, "write", req.params.name);
    const name = assertImageName(req.params.name);
    const held = await uploads.held(name);
    if (!held) throw new ImageTransferError("not_found", `no upload of ${name} is held`);
    void reply.header("upload-offset", String(held.heldBytes));
    if (req.method === "HEAD") return reply.send();
    return { name, held_bytes: held.heldBytes, done: false, sha256: held.sha256 };
  };
  app.get(`${base}/uploads/:name`, { exposeHeadRoute: false, schema: { params: NameParams, tags: ["images"], summary: "Bytes held of an upload in progress", response: { 200: UploadReply } } }, uploadHeld);
  app.head(`${base}/uploads/:name`, { schema: { params: NameParams, tags: ["images"], summary: "Bytes held of an upload in progress (Upload-Offset)" } }, uploadHeld);
};
