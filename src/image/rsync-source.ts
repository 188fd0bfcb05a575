import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { exec } from "../lib/exec.js";
import { digestFile } from "./digest.js";
import { ImageTransferError } from "./errors.js";
import { ImageLibrary } from "./library.js";
import { assertImageName, isImageName } from "./names.js";

/**
 * A DBC image server: an rsync daemon module (`image_server=<id>,<ip>,<port>,<module>`), driven
 * with the `rsync` binary and argument arrays. It publishes no hash, so what arrives is hashed
 * here and the caller records it.
 */
export interface RsyncServer {
  host: string;
  port: number;
  module: string;
  /** For a module with `auth users`; the password travels in RSYNC_PASSWORD, never in argv. */
  user?: string;
  password?: string;
}

export interface RsyncListing {
  name: string;
  sizeBytes: number;
}

/** rsync's own stall bound (seconds without data), so a dead server fails rather than hangs. */
const IO_TIMEOUT_S = 60;
/** A transfer of a large image may take hours; rsync's I/O timeout bounds stalls instead. */
const TRANSFER_TIMEOUT_MS = 24 * 3600 * 1000;

function check(server: RsyncServer): void {
  // Each reaches argv inside `host::module/...`: a leading "-" would read as an option.
  if (!/^[A-Za-z0-9][A-Za-z0-9.:-]*$/.test(server.host) && !/^\[[0-9A-Fa-f:.]+\]$/.test(server.host)) {
    throw new ImageTransferError("bad_request", `rsync host is invalid: ${JSON.stringify(server.host)}`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(server.module)) throw new ImageTransferError("bad_request", `rsync module is invalid: ${JSON.stringify(server.module)}`);
  if (!Number.isInteger(server.port) || server.port < 1 || server.port > 65535) throw new ImageTransferError("bad_request", `rsync port is invalid: ${server.port}`);
  if (server.user !== undefined && !/^[A-Za-z0-9._-]+$/.test(server.user)) throw new ImageTransferError("bad_request", `rsync user is invalid: ${JSON.stringify(server.user)}`);
}

const remote = (s: RsyncServer, path = ""): string => `${s.user ? `${s.user}@` : ""}${s.host}::${s.module}/${path}`;

function env(s: RsyncServer): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C" };
  if (s.password !== undefined) e.RSYNC_PASSWORD = s.password;
  else delete e.RSYNC_PASSWORD;
  return e;
}

/**
 * A `--list-only` line: `-rw-r--r--  1,073,741,824 2024/01/02 03:04:05 name`. Sizes are grouped
 * with commas (or dots in some locales) unless rsync is told otherwise; both are stripped.
 */
export function parseRsyncList(stdout: string): RsyncListing[] {
  const out: RsyncListing[] = [];
  for (const line of stdout.split("\n")) {
    const m = /^-\S{9}\s+([\d,.]+)\s+\S+\s+\S+\s+(.+)$/.exec(line.trimEnd());
    if (!m || !isImageName(m[2]!)) continue;
    out.push({ name: m[2]!, sizeBytes: Number(m[1]!.replace(/[,.]/g, "")) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The `*.qcow2` images of the module, with their sizes. */
export async function listRsync(server: RsyncServer, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<RsyncListing[]> {
  check(server);
  const { stdout } = await exec("rsync", ["--list-only", "--no-human-readable", `--timeout=${IO_TIMEOUT_S}`, "--port", String(server.port), "--", remote(server)], {
    env: env(server),
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return parseRsyncList(stdout);
}

export interface RsyncDownloadOptions {
  name: string;
  destDir: string;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
  signal?: AbortSignal;
  /** Piece size of the digest recorded for the arrived image (library.ts); default the library's. */
  pieceBytes?: number;
}

/**
 * Pulls one image into `destDir`: into `.<name>.rsync.part` (`--append-verify`: a cut transfer
 * resumes from the bytes held, and rsync checks the whole file against the sender at the end),
 * then hashed, renamed into place and deduplicated. Progress polls the part file's size against
 * the listed size (rsync's progress output is meant for a terminal). Resolves with the sha256.
 */
export async function downloadRsync(server: RsyncServer & RsyncDownloadOptions): Promise<{ path: string; sizeBytes: number; sha256: string }> {
  check(server);
  const name = assertImageName(server.name);
  const library = new ImageLibrary(server.destDir, server.pieceBytes ? { pieceBytes: server.pieceBytes } : {});
  const listed = (await listRsync(server, server.signal ? { signal: server.signal } : {})).find((l) => l.name === name);
  if (!listed) throw new ImageTransferError("not_found", `rsync server ${server.host}:${server.port}/${server.module} has no image ${name}`);
  const here = await library.entry(name);
  if (here) {
    if (here.sizeBytes !== listed.sizeBytes) throw new ImageTransferError("conflict", `${name} is here already with other content`);
    return { path: library.path(name), sizeBytes: here.sizeBytes, sha256: here.sha256 };
  }
  await mkdir(server.destDir, { recursive: true });
  const part = join(server.destDir, `.${name}.rsync.part`);
  const poll = setInterval(() => {
    void stat(part).then(
      (st) => server.onProgress?.({ bytesDone: Math.min(st.size, listed.sizeBytes), bytesTotal: listed.sizeBytes }),
      () => undefined,
    );
  }, 250);
  try {
    await exec("rsync", ["--partial", "--append-verify", "--no-motd", `--timeout=${IO_TIMEOUT_S}`, "--port", String(server.port), "--", remote(server, name), part], {
      env: env(server),
      timeoutMs: TRANSFER_TIMEOUT_MS,
      ...(server.signal ? { signal: server.signal } : {}),
    });
  } catch (e) {
    if (server.signal?.aborted) throw new ImageTransferError("aborted", `download of ${name} stopped; the part stays for a later resume`);
    throw e;
  } finally {
    clearInterval(poll);
  }
  const digest = await digestFile(part, { pieceBytes: library.pieceBytes, ...(server.signal ? { signal: server.signal } : {}) });
  if (digest.sizeBytes !== listed.sizeBytes) throw new ImageTransferError("source_failed", `${name}: got ${digest.sizeBytes} bytes of the ${listed.sizeBytes} listed`);
  server.onProgress?.({ bytesDone: digest.sizeBytes, bytesTotal: listed.sizeBytes });
  await rename(part, library.path(name));
  await library.remember(name, digest);
  await library.dedupe(name);
  return { path: library.path(name), sizeBytes: digest.sizeBytes, sha256: digest.sha256 };
}

/**
 * Pushes a local image to the module as `name`. rsync writes it under a temporary name and renames
 * it when whole; a cut upload is kept in the module's `.rsync-partial/` and resumed from there.
 * Refused when the module holds the name already with another size (rsync would replace it).
 */
export async function uploadRsync(server: RsyncServer & { name: string; path: string; signal?: AbortSignal }): Promise<{ sizeBytes: number }> {
  check(server);
  const name = assertImageName(server.name);
  const sizeBytes = (await stat(server.path)).size;
  const there = (await listRsync(server, server.signal ? { signal: server.signal } : {})).find((l) => l.name === name);
  if (there) {
    if (there.sizeBytes === sizeBytes) return { sizeBytes };
    throw new ImageTransferError("conflict", `rsync server holds ${name} already with other content; it is never overwritten`);
  }
  await exec("rsync", ["--partial", "--partial-dir=.rsync-partial", "--no-motd", `--timeout=${IO_TIMEOUT_S}`, "--port", String(server.port), "--", server.path, remote(server, name)], {
    env: env(server),
    timeoutMs: TRANSFER_TIMEOUT_MS,
    ...(server.signal ? { signal: server.signal } : {}),
  });
  return { sizeBytes };
}

/** Removes the part of a stopped rsync download (a renter gave up on it). */
export async function discardRsyncPart(destDir: string, name: string): Promise<void> {
  await rm(join(destDir, `.${assertImageName(name)}.rsync.part`), { force: true });
}
