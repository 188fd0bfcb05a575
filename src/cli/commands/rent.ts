import { join, resolve } from "node:path";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { ApiError } from "../../api/errors.js";
import type { RentGrant, RentGrantReply, RentList, RentRevoke, RentalItem } from "../../api/host-rent.js";
import { readAdminToken } from "../../auth/identity.js";
import { RentalError } from "../../auth/errors.js";
import { RentalLedger, rentalItem, type RentalState, type RevokeTarget } from "../../auth/rental-ledger.js";
import type { RenterSpec } from "../../auth/renter.js";
import { HostApiError, HostClient, UnreachableError } from "../../sdk/index.js";
import { openDb } from "../../store/db.js";
import type { Command } from "commander";
import { failed, UsageError } from "../errors.js";
import { parsePort, withAgentOptions, type AgentOptions } from "../options.js";

export const usage = `batu rent grant <node_id> (--wallet <ss58> | --multisig <w1,w2,...> --threshold N) --until <time>
    [--gpus N] [--cpus N] [--mem-gib N] [--disk-gib N] [--disk-iops N] [--disk-mbps N] [--net-mbit N]
batu rent list [--node <node_id>] [--state active|expired|revoked] [--json]
batu rent revoke <id> [--json]
  [--conf-dir ./conf] [--data-dir ./data] [--port 10000]
  The rental ledger: which renter (a wallet, or a multisig set) may use a node through the
  renter API (/api/v1) until when. --until is an ISO 8601 time (2026-07-01T00:00:00Z) or a
  duration from now: 90m, 12h, 30d, 2w. --gpus rents that many of the node's GPUs (several
  renters share the node); without it the whole node goes to this renter alone. --cpus, --mem-gib
  and --disk-gib cap what the renter's VMs on the node may hold; --disk-iops, --disk-mbps and --net-mbit
  cap each of its VMs' disk I/O (all its disks together) and network (each way), from each boot. Asks the running agent (admin token from conf/);
  when no agent runs, edits the ledger in data/batu.db directly.`;

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30d`, `12h`, `90m`, `2w` from `now`, or an ISO 8601 time. */
export function parseUntil(text: string, now: Date = new Date()): Date {
  const m = /^(\d{1,6})\s*([mhdw])$/.exec(text.trim());
  const until = m ? new Date(now.getTime() + Number(m[1]) * UNIT_MS[m[2]!]!) : new Date(text);
  if (Number.isNaN(until.getTime())) throw new UsageError(`--until: not an ISO 8601 time or a duration (30d, 12h, 90m): ${text}`);
  return until;
}

interface Values extends AgentOptions {
  json?: boolean;
  wallet?: string;
  multisig?: string;
  threshold?: string;
  until?: string;
  node?: string;
  state?: string;
  gpus?: string;
  cpus?: string;
  memGib?: string;
  diskGib?: string;
  diskIops?: string;
  diskMbps?: string;
  netMbit?: string;
}

export function register(program: Command): void {
  const rent = program.command("rent").description("grant, list and revoke rentals of nodes to renters").addHelpText("after", `\n${usage}`);
  withAgentOptions(rent.command("grant").argument("<node_id>").description("rent a node (or some of its GPUs) to a wallet or a multisig set"))
    .option("--wallet <ss58>", "the renter's wallet")
    .option("--multisig <w1,w2,...>", "a multisig set of wallets")
    .option("--threshold <n>", "with --multisig: signatures needed")
    .option("--until <time>", "ISO 8601 time, or a duration: 90m, 12h, 30d, 2w")
    .option("--gpus <n>", "rent that many GPUs (several renters share the node)")
    .option("--cpus <n>", "cap the renter's vCPUs on the node")
    .option("--mem-gib <n>", "cap the renter's memory, GiB")
    .option("--disk-gib <n>", "cap the renter's disk, GiB")
    .option("--disk-iops <n>", "cap each of its VMs' disk reads and writes per second")
    .option("--disk-mbps <n>", "cap each of its VMs' disk MB/s")
    .option("--net-mbit <n>", "cap each of its VMs' network, Mbit/s each way")
    .option("--json", "print JSON")
    .action((node: string, opts: Values) => rentGrant(node, opts));
  withAgentOptions(rent.command("list").description("the rental ledger"))
    .option("--node <node_id>", "only this node's rentals")
    .option("--state <state>", "active, expired or revoked")
    .option("--json", "print JSON")
    .action((opts: Values) => rentList(opts));
  withAgentOptions(rent.command("revoke").argument("<id>", "the rental's id (batu rent list)").description("end a rental now"))
    .option("--json", "print JSON")
    .action((id: string, opts: Values) => rentRevoke(id, opts));
}

/** A `--gpus`-like flag: a whole number of at least 1, or absent. */
function count(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9]\d{0,6}$/.test(text.trim())) throw new UsageError(`--${flag}: a whole number of at least 1, not ${text}`);
  return Number(text);
}

/** Runs `online` against the local agent; when none answers, `offline` on the ledger in the data dir. */
async function withLedger<T>(values: Values, online: (c: HostClient) => Promise<T>, offline: (l: RentalLedger) => T): Promise<T> {
  const port = parsePort(values.port);
  const token = readAdminToken(values.confDir);
  try {
    if (!token) throw new UnreachableError("(no admin token)", new Error("no agent has run here"));
    return await online(new HostClient(`127.0.0.1:${port}`, token, 15_000));
  } catch (e) {
    if (e instanceof HostApiError) throw failed(`refused: ${e.message}`);
    if (!(e instanceof UnreachableError)) throw e;
  }
  await cryptoWaitReady();
  const { DB_FILE } = await import("../../agent/state.js");
  const db = openDb(join(resolve(values.dataDir), DB_FILE));
  try {
    return offline(new RentalLedger(db));
  } catch (e) {
    if (e instanceof ApiError || e instanceof RentalError) throw failed(`refused: ${e.message}`);
    throw e;
  } finally {
    db.close();
  }
}

function renterOf(values: Values): { wallet: string } | { multisig_accounts: { wallets: string[]; threshold: string } } {
  if (values.wallet && values.multisig) throw new UsageError("give --wallet or --multisig, not both");
  if (values.wallet) return { wallet: values.wallet };
  if (!values.multisig) throw new UsageError(`missing --wallet or --multisig\n${usage}`);
  if (!values.threshold) throw new UsageError("--multisig needs --threshold N");
  return { multisig_accounts: { wallets: values.multisig.split(",").map((w) => w.trim()).filter(Boolean), threshold: values.threshold } };
}

const specOf = (r: ReturnType<typeof renterOf>): RenterSpec => ("wallet" in r ? { wallet: r.wallet } : { multisig: r.multisig_accounts });

function describe(r: RentalItem): string {
  const who = r.wallet ?? `multisig ${r.renter} (${r.multisig_accounts?.threshold} of ${r.multisig_accounts?.wallets.join(",")})`;
  const what = r.gpus === null ? "node" : `${r.gpus} GPU${r.gpus === 1 ? "" : "s"} of node`;
  const caps = [
    r.cpu_cores !== null ? `${r.cpu_cores} vCPUs` : "",
    r.mem_gib !== null ? `${r.mem_gib}G memory` : "",
    r.disk_gib !== null ? `${r.disk_gib}G disk` : "",
    r.disk_iops !== null ? `${r.disk_iops} disk IOPS a VM` : "",
    r.disk_mbps !== null ? `${r.disk_mbps} disk MB/s a VM` : "",
    r.net_mbit !== null ? `${r.net_mbit} Mbit/s a VM` : "",
  ].filter(Boolean);
  return `rental ${r.id}: ${what} ${r.node_id} to ${who} until ${r.until} (${r.state})${caps.length ? `, at most ${caps.join(", ")}` : ""}`;
}

async function rentGrant(nodeId: string, values: Values): Promise<void> {
  if (!values.until) throw new UsageError("missing --until (an ISO 8601 time, or a duration like 30d)");
  const until = parseUntil(values.until);
  const renter = renterOf(values);
  const [gpus, cpus, mem, disk] = [count("gpus", values.gpus), count("cpus", values.cpus), count("mem-gib", values.memGib), count("disk-gib", values.diskGib)];
  const [iops, mbps, mbit] = [count("disk-iops", values.diskIops), count("disk-mbps", values.diskMbps), count("net-mbit", values.netMbit)];
  const body: RentGrant = {
    node_id: nodeId,
    until: until.toISOString(),
    ...renter,
    ...(gpus !== undefined ? { gpus } : {}),
    ...(cpus !== undefined ? { cpu_cores: cpus } : {}),
    ...(mem !== undefined ? { mem_gib: mem } : {}),
    ...(disk !== undefined ? { disk_gib: disk } : {}),
    ...(iops !== undefined ? { disk_iops: iops } : {}),
    ...(mbps !== undefined ? { disk_mbps: mbps } : {}),
    ...(mbit !== undefined ? { net_mbit: mbit } : {}),
  };
  const limits = {
    ...(gpus !== undefined ? { gpus } : {}),
    ...(cpus !== undefined ? { cpuCores: cpus } : {}),
    ...(mem !== undefined ? { memGib: mem } : {}),
    ...(disk !== undefined ? { diskGib: disk } : {}),
    ...(iops !== undefined ? { diskIops: iops } : {}),
    ...(mbps !== undefined ? { diskMBps: mbps } : {}),
    ...(mbit !== undefined ? { netMbit: mbit } : {}),
  };
  const reply: RentGrantReply = await withLedger(
    values,
    (c) => c.rentGrant(body),
    (l) => {
      const now = new Date();
      return { message: "ok" as const, rental: rentalItem(l.grant(nodeId, specOf(renter), until, now, limits), now) };
    },
  );
  console.log(values.json ? JSON.stringify(reply) : `granted ${describe(reply.rental)}`);
}

async function rentList(values: Values): Promise<void> {
  const states: readonly (RentalState | undefined)[] = ["active", "expired", "revoked", undefined];
  const state = states.find((s) => s === values.state);
  if (state !== values.state) throw new UsageError("--state: must be one of active, expired, revoked");
  const reply: RentList = await withLedger(
    values,
    (c) => c.rentList({ ...(values.node ? { node_id: values.node } : {}), ...(state ? { state } : {}) }),
    (l) => {
      const now = new Date();
      const filter = { ...(values.node ? { nodeId: values.node } : {}), ...(state ? { state } : {}) };
      return { rentals: l.list(filter, now).map((r) => rentalItem(r, now)) };
    },
  );
  if (values.json) {
    console.log(JSON.stringify(reply));
    return;
  }
  if (reply.rentals.length === 0) {
    console.log("no rentals");
    return;
  }
  const rows = reply.rentals.map((r) => [String(r.id), r.state, r.until, r.node_id, r.wallet ?? `${r.renter} (multisig ${r.multisig_accounts?.threshold}/${r.multisig_accounts?.wallets.length})`]);
  const head = ["ID", "STATE", "UNTIL", "NODE", "RENTER"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [head, ...rows]) console.log(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  "));
}

async function rentRevoke(id: string, values: Values): Promise<void> {
  if ( !/^[1-9][0-9]{0,15}$/.test(id)) throw new UsageError(`missing or bad <id> (see batu rent list)\n${usage}`);
  const body: RentRevoke = { id: Number(id) };
  const target: RevokeTarget = { id: Number(id) };
  const reply: RentGrantReply = await withLedger(
    values,
    (c) => c.rentRevoke(body),
    (l) => {
      const now = new Date();
      return { message: "ok" as const, rental: rentalItem(l.revoke(target, now), now) };
    },
  );
  console.log(values.json ? JSON.stringify(reply) : `revoked ${describe(reply.rental)}`);
}
