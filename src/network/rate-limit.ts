/**
 * Per-VM network bandwidth caps, on the VM's taps, both ways:
 * - host → VM (the guest's download) is shaped by a `tbf` qdisc at the tap's egress: packets wait
 *   rather than drop, so TCP runs smoothly at the cap;
 * - VM → host (its upload) is policed by an nftables chain on the tap's ingress hook (`table netdev
 *   batu_rate`): tc's own policer (act_police) is missing from some kernels (this machine's), while
 *   nftables' `limit` is everywhere batu runs. Either way it is the tap, so every path the guest's
 *   traffic takes (NAT, the bridge to other guests, a LAN) is capped.
 * The nftables table is rendered whole from the taps that have a cap and loaded as one transaction
 * (nothing of another agent run stays); the tbf goes with its tap when the VM ends.
 */
import { exec, ExecError } from "../lib/exec.js";
import { applyRuleset, type NftOptions } from "./nft.js";

export const RATE_FAMILY = "netdev";
export const RATE_TABLE = "batu_rate";

/** One tap's cap, in megabits per second (10^6 bits) each way. */
export interface TapRate {
  tap: string;
  mbit: number;
}

export const bytesPerSecond = (mbit: number): number => mbit * 125_000;

/** 50 ms at the rate, at least 64 KiB: a TCP window's burst passes, a sustained excess does not. */
export const burstBytes = (mbit: number): number => Math.max(65_536, Math.round(bytesPerSecond(mbit) / 20));

/** nftables wants a chain name of letters, digits and `_`: a tap's `-` becomes `_`. */
const chainOf = (tap: string): string => `up_${tap.replace(/[^A-Za-z0-9_]/g, "_")}`;

/** The whole `table netdev batu_rate` for `rates`, as one nft script that replaces what was there. */
export function renderRateTable(rates: readonly TapRate[]): string {
  const lines = [`table ${RATE_FAMILY} ${RATE_TABLE} {}`, `delete table ${RATE_FAMILY} ${RATE_TABLE}`];
  if (rates.length === 0) return `${lines.join("\n")}\n`;
  lines.push(`table ${RATE_FAMILY} ${RATE_TABLE} {`);
  for (const { tap, mbit } of [...rates].sort((a, b) => a.tap.localeCompare(b.tap))) {
    lines.push(
      `  chain ${chainOf(tap)} {`,
      `    type filter hook ingress device "${tap}" priority 0; policy accept;`,
      `    limit rate over ${bytesPerSecond(mbit)} bytes/second burst ${burstBytes(mbit)} bytes drop`,
      "  }",
    );
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

/** `tc` arguments that shape what `tap` sends to its guest to `mbit` (replacing any root qdisc). */
export function tbfArgs(tap: string, mbit: number): string[] {
  return ["qdisc", "replace", "dev", tap, "root", "tbf", "rate", `${mbit}mbit`, "burst", String(burstBytes(mbit)), "latency", "50ms"];
}

/** What a tap is capped to now, read back from the kernel (null: no cap that way). */
export interface TapRateReading {
  down_mbit: number | null;
  up_mbit: number | null;
}

/** Applies the caps of the taps that have one; reads them back. Tap names come from batu, never a request. */
export class TapRateLimits {
  /** What tc was last told for each tap (null: no cap), so a sync changes only what changed. */
  private readonly shaped = new Map<string, number | null>();
  private loaded: string | null = null;

  constructor(private readonly opts: NftOptions = {}) {}

  /**
   * Makes the caps of `taps` exactly these (`mbit` null: none). A tap absent from the list is
   * forgotten (it went with its VM, and its qdisc with it).
   */
  async apply(taps: readonly { tap: string; mbit: number | null }[]): Promise<void> {
    for (const { tap, mbit } of taps) {
      if (this.shaped.has(tap) && this.shaped.get(tap) === mbit) continue;
      if (mbit !== null) await this.tc(tbfArgs(tap, mbit));
      // No cap: whatever an earlier run of the agent left there goes (none: tc says so, ignored).
      else await this.tc(["qdisc", "del", "dev", tap, "root"]).catch(() => undefined);
      this.shaped.set(tap, mbit);
    }
    const listed = new Set(taps.map((t) => t.tap));
    for (const tap of [...this.shaped.keys()]) if (!listed.has(tap)) this.shaped.delete(tap);
    const script = renderRateTable(taps.flatMap(({ tap, mbit }) => (mbit === null ? [] : [{ tap, mbit }])));
    if (script === this.loaded) return;
    await applyRuleset(script, this.opts);
    this.loaded = script;
  }

  async read(tap: string): Promise<TapRateReading> {
    const qdiscs = JSON.parse((await this.tc(["-j", "qdisc", "show", "dev", tap])).stdout || "[]") as Array<{ kind: string; root?: boolean; options?: { rate?: number } }>;
    const tbf = qdiscs.find((q) => q.kind === "tbf" && q.root);
    // No chain (nft refuses to list it): no cap on the upload.
    const chain = await this.nft(["-j", "list", "chain", RATE_FAMILY, RATE_TABLE, chainOf(tap)]).catch(() => null);
    type Listed = { nftables: Array<{ rule?: { expr: Array<{ limit?: { rate: number; rate_unit?: string } }> } }> };
    const rule = chain ? (JSON.parse(chain) as Listed).nftables.find((o) => o.rule) : undefined;
    const limit = rule?.rule?.expr.find((e) => e.limit)?.limit;
    return {
      // tc's JSON gives bytes per second; nft's gives the rate in its unit.
      down_mbit: tbf?.options?.rate ? (tbf.options.rate * 8) / 1e6 : null,
      up_mbit: limit ? (limit.rate * unitBytes(limit.rate_unit)) / 125_000 : null,
    };
  }

  /** Removes the nftables table (agent shutdown keeps it: VMs run on; this is for tests and teardown). */
  async close(): Promise<void> {
    await applyRuleset(renderRateTable([]), this.opts);
    this.loaded = null;
  }

  private tc(args: string[]) {
    const [command, argv] = this.opts.netns === undefined ? ["tc", args] : ["ip", ["netns", "exec", this.opts.netns, "tc", ...args]];
    return exec(command, argv, { timeoutMs: 10_000 });
  }

  private async nft(args: string[]): Promise<string> {
    const [command, argv] = this.opts.netns === undefined ? ["nft", args] : ["ip", ["netns", "exec", this.opts.netns, "nft", ...args]];
    try {
      return (await exec(command, argv, { timeoutMs: 10_000 })).stdout;
    } catch (e) {
      if (e instanceof ExecError) throw new Error(`nft ${args.join(" ")}: ${e.stderr.trim()}`, { cause: e });
      throw e;
    }
  }
}

const unitBytes = (unit: string | undefined): number => ({ kbytes: 1024, mbytes: 1024 ** 2, gbytes: 1024 ** 3 })[unit ?? "bytes"] ?? 1;
