import { Option, type Command } from "commander";
import { UsageError } from "./errors.js";

/** The flags of every command that talks about this host's agent, as commander gives them. */
export interface AgentOptions {
  confDir: string;
  dataDir: string;
  port: string;
  tlsPort: string;
  host: string;
}

/**
 * Adds the flags shared by every command that talks about this host's agent: its conf and data
 * dirs and ports (what `batu agent` was started with). Every command takes all of them, as it did
 * before the move to commander, so scripts that append one keep working.
 */
export function withAgentOptions(cmd: Command): Command {
  return cmd
    .option("--conf-dir <dir>", "the agent's configuration dir (admin token, TLS key)", "./conf")
    .option("--data-dir <dir>", "the agent's data dir", "./data")
    .option("--port <port>", "the agent's HTTP port", "10000")
    .option("--tls-port <port>", "the agent's HTTPS port", "10443")
    .option("--host <addr>", "the address the agent binds", "0.0.0.0");
}

/** `--json` and `-o, --output json|yaml|table` (see output.ts). */
export function withOutputOptions(cmd: Command): Command {
  return cmd
    .option("--json", "print JSON (same as -o json)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json", "yaml"]));
}

/** `--remote`, `--token`, `--tls-pin`: another host's agent instead of this one's (see target.ts). */
export function withRemoteOptions(cmd: Command): Command {
  return cmd
    .option("--remote <url>", "another host's agent: https://<host>:10443 (or BATU_REMOTE)")
    .option("--token <token>", "that host's admin token (or BATU_TOKEN)")
    .option("--tls-pin <sha256>", "that host's certificate SHA-256, as `batu tls` prints it there (or BATU_TLS_PIN)");
}

export function parsePort(text: string, flag = "--port"): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${flag}: not a port number: ${text}`);
  return n;
}

/** A whole number in [min, max], or a UsageError naming the flag. */
export function parseCount(text: string, flag: string, min = 1, max = 1_000_000): number {
  const n = Number(text);
  if (!/^\d{1,9}$/.test(text.trim()) || n < min || n > max) throw new UsageError(`${flag}: a whole number in [${min}, ${max}], not ${text}`);
  return n;
}

/** Collects a repeatable flag's values (`--forward a --forward b`). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
