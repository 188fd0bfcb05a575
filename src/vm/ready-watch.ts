import { open } from "node:fs/promises";

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
        if (size < offset) offset = 0; // the log was truncated: a new boot
        if (size > offset) {
          const buf = Buffer.alloc(size - offset);
          await fh.read(buf, 0, buf.length, offset);
          offset = size;
          const lines = (carry + buf.toString("utf8")).split(/\r?\n/);
          carry = lines.pop() ?? "";
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
