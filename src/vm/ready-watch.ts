import { open } from "node:fs/promises";

/** The most read from the log in one go: a guest can write hundreds of MiB between two looks. */
const CHUNK_BYTES = 64 * 1024;
/** A line longer than this is not a ready marker: it is not kept whole (the guest writes what it likes). */
const MAX_LINE_CHARS = 4096;

/**
 * Resolves true once `marker` appears as a line in the (growing) serial log, false when `signal`
 * aborts. Reads only what was appended since the last look; polls, since the file is written by
 * QEMU and fs.watch is unreliable across file replacement.
 */
export async function waitForMarker(
  path: string,
  marker: string,
  signal: AbortSignal,
  opts: { fromOffset?: number; pollMs?: number } = {},
): Promise<boolean> {
  let offset = opts.fromOffset ?? 0;
  let carry = "";
  const pollMs = opts.pollMs ?? 50;
  while (!signal.aborted) {
    try {
      const fh = await open(path, "r");
      try {
        const { size } = await fh.stat();
        if (size < offset) {
          // The log was started afresh (a new boot) or rotated: read it from its start.
          offset = 0;
          carry = "";
        }
        const buf = Buffer.alloc(Math.min(CHUNK_BYTES, Math.max(0, size - offset)));
        while (size > offset && !signal.aborted) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - offset), offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          const lines = (carry + buf.subarray(0, bytesRead).toString("utf8")).split(/\r?\n/);
          carry = lines.pop() ?? "";
          // An over-long line can never be the marker: keep a stand-in that cannot match either.
          if (carry.length > MAX_LINE_CHARS) carry = "\u0000";
          if (lines.some((l) => l.trim() === marker)) return true;
        }
      } finally {
        await fh.close();
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return false;
}
