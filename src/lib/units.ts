const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Parses a size as batu's APIs accept it: `512M`, `512MB`, `8G`, `8GB`, `1T`, or a bare number of GiB
 * (DBC's `mem_size`/`disk_size` and seed 000's `main_memory`/`disk_memory` are GB numbers).
 * Returns bytes, or undefined when the text is not a size.
 */
export function parseSizeBytes(value: string | number): number | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && value > 0 ? Math.round(value * GiB) : undefined;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:i?B)?)?\s*$/i.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? "G").toUpperCase();
  const factor = { K: 1024, M: MiB, G: GiB, T: 1024 * GiB }[unit as "K" | "M" | "G" | "T"];
  const bytes = Math.round(n * factor);
  return bytes > 0 ? bytes : undefined;
}

/** A size as DBC shows one: GiB with up to two decimals, `10G`, `7.75G`. */
export const formatGiB = (bytes: number): string => `${Math.round((bytes / GiB) * 100) / 100}G`;

/** A fraction 0…1 as DBC writes progress: `"42%"` (whole percents, rounded down: 100% only when done). */
export const percentText = (fraction: number): string => `${Math.floor(fraction * 100)}%`;

export const bytesToMiB = (bytes: number): number => Math.floor(bytes / MiB);
export const bytesToGiB = (bytes: number): number => bytes / GiB;
export { MiB, GiB };
