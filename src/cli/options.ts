import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.js";

/** Flags shared by every command that talks about this host's agent. */
export const AGENT_FLAGS = {
  "conf-dir": { type: "string", default: "./conf" },
  "data-dir": { type: "string", default: "./data" },
  port: { type: "string", default: "10000" },
  "tls-port": { type: "string", default: "10443" },
  host: { type: "string", default: "0.0.0.0" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with unknown flags reported as a UsageError. */
export function parse<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function parsePort(text: string, flag = "--port"): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${flag}: not a port number: ${text}`);
  return n;
}
