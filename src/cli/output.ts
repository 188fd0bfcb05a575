/**
 * How commands print what they got: a table (or a few lines) for people, JSON or YAML for scripts.
 * `--json` is `-o json`. Machine formats print the server's data as it came, so a script sees the
 * API's own field names; tables pick and name columns for reading.
 */
import { stringify as yamlStringify } from "yaml";
import { UsageError } from "./errors.js";

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The options every listing command takes. */
export interface OutputOptions {
  json?: boolean;
  output?: string;
}

/** `-o json|yaml|table` and `--json` (which wins only when -o is absent; both naming different formats is an error). */
export function outputFormat(opts: OutputOptions): OutputFormat {
  const named = opts.output?.trim().toLowerCase();
  if (named !== undefined) {
    const format = OUTPUT_FORMATS.find((f) => f === named);
    if (!format) throw new UsageError(`-o/--output: one of ${OUTPUT_FORMATS.join(", ")}, not ${opts.output}`);
    if (opts.json && format !== "json") throw new UsageError(`--json and -o ${format} disagree: give one`);
    return format;
  }
  return opts.json ? "json" : "table";
}

/** True for the formats a script reads: no spinner, no chatter. */
export const isMachine = (format: OutputFormat): boolean => format !== "table";

/** One column of a table: its header and how a row fills it. */
export interface Column<T> {
  header: string;
  value: (row: T) => string | number | boolean | null | undefined;
  /** Numbers read better right-aligned. */
  align?: "left" | "right";
}

const cell = (v: string | number | boolean | null | undefined): string => (v === null || v === undefined || v === "" ? "-" : String(v));

/** Rows under upper-case headers, columns two spaces apart, the last column unpadded. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const head = columns.map((c) => c.header.toUpperCase());
  const body = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        if (columns[i]!.align === "right") return c.padStart(widths[i]!);
        return i === cells.length - 1 ? c : c.padEnd(widths[i]!);
      })
      .join("  ");
  return [line(head), ...body.map(line)].join("\n");
}

/** `key: value` lines, keys aligned: one object for people (`vm show`, `task show`). */
export function keyValues(entries: ReadonlyArray<readonly [string, string | number | boolean | null | undefined]>): string {
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${cell(v)}`).join("\n");
}

/** What a command prints: `data` as JSON (one line) or YAML, else what `human` makes of it. */
export function render(data: unknown, format: OutputFormat, human: () => string): string {
  if (format === "json") return JSON.stringify(data);
  if (format === "yaml") return yamlStringify(data).trimEnd();
  return human();
}

/** Prints `render(...)` with its newline. */
export function print(data: unknown, format: OutputFormat, human: () => string): void {
  console.log(render(data, format, human));
}

/** Bytes as people read them: 1.50 GiB, 300 MiB, 12 KiB. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

/** Seconds as `3d 4h`, `2h 5m`, `42s`. */
export function duration(sec: number | null | undefined): string {
  if (sec === null || sec === undefined) return "-";
  const s = Math.floor(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
