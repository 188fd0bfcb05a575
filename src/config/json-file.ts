import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import type { TSchema, Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

/** A configuration file that cannot be used: names the file and, where known, the field. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly field: string | undefined,
    reason: string,
  ) {
    super(`${file}: ${field ? `field "${field}" ` : ""}${reason}`);
    this.name = "ConfigError";
  }
}

/** `/a/b` → `a.b`, for messages. */
export function fieldName(instancePath: string): string {
  return instancePath.replace(/^\//, "").replace(/\//g, ".");
}

/** The first schema error of `value`, as [field, message]. */
export function firstSchemaError(schema: TSchema, value: unknown): [string, string] | undefined {
  const first = Value.Errors(schema, value).First();
  if (!first) return undefined;
  return [fieldName(first.path) || "(root)", first.message];
}

/**
 * Reads and validates a JSON file. A missing file is created from `defaults` (atomically);
 * a file that is not JSON or fails the schema throws a ConfigError and is never overwritten.
 */
export function loadJsonFile<S extends TSchema>(
  path: string,
  schema: S | ((value: unknown) => [string, string] | undefined),
  defaults: Static<S>,
): Static<S> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ConfigError(path, undefined, `cannot be read: ${(e as Error).message}`);
    }
    try {
      writeJsonFileAtomic(path, defaults);
    } catch (we) {
      throw new ConfigError(path, undefined, `is missing and cannot be created: ${(we as Error).message}`);
    }
    return defaults;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, undefined, `is not valid JSON: ${(e as Error).message}`);
  }
  const err = typeof schema === "function" ? schema(value) : firstSchemaError(schema, value);
  if (err) throw new ConfigError(path, err[0], err[1]);
  return value as Static<S>;
}

/**
 * Writes JSON through a temporary file and a rename, so a crash never leaves half a file: the bytes
 * are flushed before the rename and the rename before returning (a power cut keeps the old or the new
 * file, never an empty one).
 */
export function writeJsonFileAtomic(path: string, value: unknown, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, JSON.stringify(value, null, 2) + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
