/** HTTP byte ranges (RFC 9110 §14) as this image server speaks them: one range per request. */

/** An inclusive byte span, as Content-Range writes it. */
export interface ByteSpan {
  start: number;
  end: number;
}

/**
 * A `Range` header against a file of `sizeBytes`: the span to serve, "unsatisfiable" (416), or
 * null to serve the whole file (no header, a malformed one, another unit, or several ranges,
 * which RFC 9110 lets a server ignore).
 */
export function parseRange(header: string | undefined, sizeBytes: number): ByteSpan | "unsatisfiable" | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || sizeBytes === 0) return "unsatisfiable";
    return { start: Math.max(0, sizeBytes - suffix), end: sizeBytes - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? sizeBytes - 1 : Math.min(Number(m[2]), sizeBytes - 1);
  if (m[2] !== "" && Number(m[2]) < start) return null; // invalid: ignored
  if (start >= sizeBytes) return "unsatisfiable";
  return { start, end };
}

/** An upload's `Content-Range: bytes <from>-<to>/<total>`; null when absent, throws when malformed. */
export function parseContentRange(header: string | undefined): { from: number; to: number; totalBytes: number } | null {
  if (header === undefined) return null;
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  if (!m) throw new RangeError(`Content-Range: expected "bytes <from>-<to>/<total>", got ${JSON.stringify(header)}`);
  const [from, to, totalBytes] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (to < from || to >= totalBytes) throw new RangeError(`Content-Range: ${header} is not a span of the total`);
  return { from, to, totalBytes };
}
