/**
 * How the image center moves bytes, per kind of server: a batu image server over HTTP (verified
 * pieces, resumable, signed as this node), or a DBC rsync daemon (by the `rsync` binary).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { ImageTransport } from "./center.js";
import { downloadImage } from "./download.js";
import { ImageHttpSource, SourceError, uploadImage, type RequestSigner } from "./http-source.js";
import { sidecarName } from "./names.js";
import { downloadRsync, listRsync, uploadRsync } from "./rsync-source.js";
import { httpBase, type ImageServer } from "./servers.js";

type HttpServer = Extract<ImageServer, { kind: "http" }>;
type RsyncServer = Extract<ImageServer, { kind: "rsync" }>;

/**
 * The other sources of a download from a batu server: the group members it names (`/peers`, to
 * group nodes only), each serving the pieces it holds. None when it names none.
 */
async function swarmPeers(src: ImageHttpSource, selfNodeId: string, signal: AbortSignal): Promise<string[]> {
  try {
    const answer = await src.json<{ peers: Array<{ node_id: string; url: string }> }>("/peers", { signal }, 1024 * 1024);
    return (answer?.peers ?? []).filter((p) => p.node_id !== selfNodeId).map((p) => p.url);
  } catch {
    return []; // a server of no group, or an older one: the server alone
  }
}

/** A batu image server: every request signed by this node, so the server may serve it a renter's image. */
export function httpTransport(sign: RequestSigner, selfNodeId: string): ImageTransport {
  const source = (server: ImageServer) => new ImageHttpSource(httpBase(server as HttpServer), undefined, sign);
  return {
    list: async (server) => (await source(server).list()).map((i) => ({ name: i.name, sizeBytes: i.size_bytes, sha256: i.sha256 })),
    download: async (server, name, destDir, opts) => {
      const base = httpBase(server as HttpServer);
      await downloadImage({
        sources: [base, ...(await swarmPeers(source(server), selfNodeId, opts.signal))],
        name,
        destDir,
        sign,
        signal: opts.signal,
        onProgress: (p) => opts.onProgress(p.bytesDone, p.bytesTotal),
      });
    },
    upload: async (server, name, srcDir, opts) => {
      const src = source(server);
      // The sidecar first: how the image boots and whose it is travel with it.
      const sidecar = join(srcDir, sidecarName(name));
      if (existsSync(sidecar)) {
        const res = await src.open(`/images/${encodeURIComponent(name)}/meta`, { method: "PUT", headers: { "content-type": "application/json" }, signal: opts.signal }, Readable.from([await readFile(sidecar)]));
        res.resume();
        if (res.statusCode !== 200) throw new SourceError(src.baseUrl, `the metadata of ${name} was refused: HTTP ${res.statusCode}`, res.statusCode);
      }
      await uploadImage({ url: src.baseUrl, name, path: join(srcDir, name), sign, signal: opts.signal, onProgress: (p) => opts.onProgress(p.bytesDone, p.bytesTotal) });
    },
  };
}

/** A DBC image server: an rsync daemon's module (no published hash: what arrives is hashed here). */
export function rsyncTransport(): ImageTransport {
  const at = (server: ImageServer) => {
    const s = server as RsyncServer;
    return { host: s.host, port: s.port, module: s.module };
  };
  return {
    list: (server) => listRsync(at(server)),
    download: async (server, name, destDir, opts) => {
      await downloadRsync({ ...at(server), name, destDir, signal: opts.signal, onProgress: (p) => opts.onProgress(p.bytesDone, p.bytesTotal) });
    },
    upload: async (server, name, srcDir, opts) => {
      await uploadRsync({ ...at(server), name, path: join(srcDir, name), signal: opts.signal });
      opts.onProgress(1, 1);
    },
  };
}
