/**
 * Loads, lists and removes batu's nftables table (`table inet batu`, rendered by nft-ruleset.ts)
 * with the `nft` program. Only that table is ever named: the host's other tables are not ours.
 */
import { ExecError, exec } from "../lib/exec.js";
import { NFT_FAMILY, NFT_TABLE } from "./nft-ruleset.js";

export interface NftOptions {
  /** Run `nft` inside this network namespace (`ip netns exec`): tests, never the agent. */
  netns?: string;
  /** Default 30 s: a table with thousands of forwards loads in well under a second. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** `nft` refused a command; `stderr` holds its reason (for a script, the line and the error). */
export class NftError extends Error {
  constructor(
    readonly operation: string,
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super(`nft: ${operation} failed: ${stderr.trim().slice(0, 2000) || "no error message"}`, options);
    this.name = "NftError";
  }
}

/**
 * Loads a script with `nft -f -`. nft applies a file as one transaction, so a script from
 * `renderRuleset` replaces the table whole, or fails and leaves the table as it was.
 */
export async function applyRuleset(script: string, opts: NftOptions = {}): Promise<void> {
  await nft(["-f", "-"], "loading the ruleset", opts, script);
}

/** Removes batu's table; nothing to do (and no error) when it is absent. */
export async function deleteTable(opts: NftOptions = {}): Promise<void> {
  // Creating it first makes the delete always valid, in one transaction.
  const script = `table ${NFT_FAMILY} ${NFT_TABLE} {}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n`;
  await nft(["-f", "-"], `deleting table ${NFT_FAMILY} ${NFT_TABLE}`, opts, script);
}

/** `nft list table inet batu`, or null when there is no such table. */
export async function listTable(opts: NftOptions = {}): Promise<string | null> {
  // Asked as JSON rather than told apart by the wording of "list table"'s error.
  const tables = JSON.parse(await nft(["-j", "list", "tables", NFT_FAMILY], "listing tables", opts)) as {
    nftables?: Array<{ table?: { family?: string; name?: string } }>;
  };
  const present = (tables.nftables ?? []).some((o) => o.table?.family === NFT_FAMILY && o.table.name === NFT_TABLE);
  if (!present) return null;
  return nft(["list", "table", NFT_FAMILY, NFT_TABLE], `listing table ${NFT_FAMILY} ${NFT_TABLE}`, opts);
}

async function nft(args: string[], operation: string, opts: NftOptions, input?: string): Promise<string> {
  const [command, argv] = opts.netns === undefined ? ["nft", args] : ["ip", ["netns", "exec", opts.netns, "nft", ...args]];
  const where = opts.netns === undefined ? operation : `${operation} in netns ${opts.netns}`;
  try {
    const { stdout } = await exec(command, argv, { timeoutMs: opts.timeoutMs ?? 30_000, signal: opts.signal, input });
    return stdout;
  } catch (e) {
    if (e instanceof ExecError) throw new NftError(where, e.stderr || e.message, { cause: e });
    throw e;
  }
}
