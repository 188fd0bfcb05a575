import { readFileSync } from "node:fs";
import { resolve } from "node:path";

/** batu's version, from its package.json (one source of truth for the CLI, the API docs and node info). */
export const VERSION: string = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, "../../package.json"), "utf8")) as { version: string }
).version;
