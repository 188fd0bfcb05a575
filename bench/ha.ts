/**
 * Group HA bench (docs/ha.md): what sharing the group's state through etcd costs a write, and how
 * long a failover takes. Side by side, on loopback:
 *   - a lone master (SQLite only);
 *   - the leader of an HA group (its writes shipped to a three-member etcd before each reply);
 *   - a follower of that group (the call passed on to the leader over TLS).
 * The write is the operator's `POST /common/rent/grant` of a new node each time (one row of the
 * ledger), at 1 and at `--concurrency` calls in flight; the etcd transactions counted show how many
 * writes each carried (group commit). Then the leader is SIGKILLed and the follower is called every
 * 20 ms until a write succeeds again: the failover time, for the lease TTL given (a failover not over
 * within 60 s is a FAILED line with its reason: the follower's log and the election's keys in etcd,
 * and the bench exits 1). And renter calls
 * that burn a nonce and write nothing else (`mining_nodes/session_id` once the session exists), on the
 * lone master and the HA leader: their nonces wait for no consensus write.
 *
 *   npm run bench:ha -- [--duration 5] [--concurrency 16] [--ttl 2] [--no-json]
 *
 * Real agents (dist/cli/main.js: `npm run build` first) and Debian's etcd; prints a table and writes
 * bench/results/ha-<date>.json.
 */
import { Keyring } from "@polkadot/keyring";
import { u8aToHex } from "@polkadot/util";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Etcd3 } from "etcd3";
import { ApiAgent } from "./lib/api-agent.js";
import { Cleanup } from "./lib/cleanup.js";
import { benchLog, loadAvg, sleep } from "./lib/proc.js";
import { quantile } from "./lib/stats.js";
import { EtcdCluster } from "../test/helpers/etcd.js";
import { ETCD_GRPC_OPTIONS } from "../src/group/ha/replicated-tables.js";

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    concurrency: { type: "string", default: "16" },
    ttl: { type: "string", default: "2" },
    "no-json": { type: "boolean", default: false },
  },
});
const DURATION_S = Number(flags.duration);
const CONCURRENCY = Number(flags.concurrency);
const TTL_S = Number(flags.ttl);
if (!(DURATION_S >= 1 && CONCURRENCY >= 1 && TTL_S >= 2 && TTL_S <= 60)) {
  console.error("usage: ha.ts [--duration S≥1] [--concurrency N≥1] [--ttl 2..60] [--no-json]");
  process.exit(2);
}
const started = Date.now();
const log = benchLog(started);
const cleanup = new Cleanup();
cleanup.installSignalHandlers();

interface Run {
  system: string;
  concurrency: number;
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** etcd transactions per write (HA only). */
  txnsPerWrite?: number;
}

/** The bench's renter rents a member recorded by hand (no agent behind it) on each master measured. */
let renterPair: ReturnType<Keyring["addFromUri"]> | undefined;
/** After cryptoWaitReady (sr25519 is WebAssembly). */
const renter = () => (renterPair ??= new Keyring({ type: "sr25519" }).addFromUri("//batu-bench-ha-renter"));
const MEMBER_NODE = "ab".repeat(32);

/** Records the bench's member by hand (the operator's join) and rents it to the bench's renter; throws when refused. */
async function rentMember(agent: ApiAgent): Promise<void> {
  const joined = await agent.post("/master/group/join", { address: "10.255.0.1:10000", node_id: MEMBER_NODE });
  if (joined.status !== 200) throw new Error(`group/join: ${joined.status} ${joined.bytes.toString().slice(0, 200)}`);
  const until = new Date(Date.now() + 86_400_000).toISOString();
  const grant = await agent.post("/common/rent/grant", { node_id: MEMBER_NODE, wallet: renter().address, until });
  if (grant.status !== 200) throw new Error(`rent/grant: ${grant.status} ${grant.bytes.toString().slice(0, 200)}`);
}

/** The operator's grant of a new node to a fixed wallet: one new row of the ledger. */
function grantNewNode(agent: ApiAgent): ReturnType<ApiAgent["post"]> {
  const until = new Date(Date.now() + 86_400_000).toISOString();
  return agent.post("/common/rent/grant", { node_id: randomBytes(32).toString("hex"), wallet: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", until });
}

/**
 * `concurrency` loops making `call` for DURATION_S, each timed (its input `prepare`d before the clock
 * starts); `call` throws on a wrong answer. With `revision`, the etcd transactions made are counted too.
 */
async function timed<T>(
  system: string,
  concurrency: number,
  prepare: () => T,
  call: (input: T) => Promise<void>,
  revision?: () => Promise<number>,
): Promise<Run> {
  const latencies: number[] = [];
  const rev0 = await revision?.();
  const end = performance.now() + DURATION_S * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const input = prepare();
        const t0 = performance.now();
        await call(input);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const rev1 = await revision?.();
  return {
    system,
    concurrency,
    requests: latencies.length,
    perSecond: latencies.length / DURATION_S,
    p50Ms: quantile(latencies, 0.5) ?? NaN,
    p99Ms: quantile(latencies, 0.99) ?? NaN,
    ...(rev0 !== undefined && rev1 !== undefined ? { txnsPerWrite: (rev1 - rev0) / latencies.length } : {}),
  };
}

/** Writes: a new node granted each time; every answer must be 200. */
const grants = (agent: ApiAgent, system: string, concurrency: number, revision?: () => Promise<number>) =>
  timed(
    system,
    concurrency,
    () => undefined,
    async () => {
      const r = await grantNewNode(agent);
      if (r.status !== 200) throw new Error(`${system}: rent/grant answered ${r.status}: ${r.bytes.toString().slice(0, 200)}`);
    },
    revision,
  );

/**
 * Renter calls that burn a nonce and write nothing else: `mining_nodes/session_id` of a renter whose
 * session exists (the master answers it itself). On an HA leader their nonces go with the next batch.
 * Each body is signed before its clock starts.
 */
const renterCalls = (agent: ApiAgent, system: string, concurrency: number, revision?: () => Promise<number>) =>
  timed(
    `${system}: renter call`,
    concurrency,
    () => {
      const nonce = randomBytes(27).toString("hex");
      return { peer_nodes_list: [MEMBER_NODE], additional: {}, wallet: renter().address, nonce, sign: u8aToHex(renter().sign(nonce)) };
    },
    async (body) => {
      const r = await agent.post("/api/v1/mining_nodes/session_id", body);
      if (r.json?.errcode !== 0) throw new Error(`${system}: session_id answered ${r.status}: ${r.bytes.toString().slice(0, 200)}`);
    },
    revision,
  );

function masterDirs(root: string, name: string, groupHa?: object): { conf: string; data: string; log: string } {
  const conf = join(root, name, "conf");
  mkdirSync(conf, { recursive: true });
  writeFileSync(join(conf, "host_config.json"), JSON.stringify({ host_type: "master", group_name: "bench" }));
  if (groupHa) writeFileSync(join(conf, "config.json"), JSON.stringify({ nickname: name, batu: true, group_ha: groupHa }));
  return { conf, data: join(root, name, "data"), log: join(root, name, "agent.log") };
}

/** Polls until `agent` takes writes (an HA master leads, or passes them to a leader). */
async function writable(agent: ApiAgent, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await grantNewNode(agent).catch(() => ({ status: 0 }));
    if (r.status === 200) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) {
      const tail = readFileSync(agent.logPath, "utf8").split("\n").slice(-40).join("\n");
      throw new Error(`no write accepted within ${timeoutMs} ms (last ${r.status}); its log ends:\n${tail}`);
    }
    await sleep(20);
  }
}

/** The election's keys in etcd (each with its create revision, lease and that lease's remaining TTL): who stands, who leads. */
async function electionState(client: Etcd3): Promise<string> {
  try {
    const { kvs } = await client.getAll().prefix("election/").exec();
    const keys = await Promise.all(
      kvs.map(async (kv) => {
        const ttl = await client.leaseClient.leaseTimeToLive({ ID: kv.lease }).then((r) => r.TTL, (e: Error) => e.message);
        return `${kv.key.toString()} (created at revision ${kv.create_revision}, lease ${kv.lease} TTL ${ttl} s) = ${kv.value.toString()}`;
      }),
    );
    return keys.length ? keys.join("; ") : "no key: no master stands";
  } catch (e) {
    return `cannot be read: ${(e as Error).message}`;
  }
}

async function main(): Promise<void> {
  await cryptoWaitReady();
  const root = mkdtempSync("/tmp/batu-bench-ha-");
  cleanup.add("remove temp dir", () => rmSync(root, { recursive: true, force: true }));
  log(`temp dir ${root}; load ${await loadAvg()}`);
  const etcd = await EtcdCluster.start({ ip: "127.0.0.1", dir: join(root, "etcd") });
  cleanup.add("stop etcd", () => etcd.stop());
  const client = new Etcd3({ hosts: etcd.endpoints, grpcOptions: ETCD_GRPC_OPTIONS });
  cleanup.add("close the etcd client", () => client.close());
  const revision = async () => Number((await client.get("/batu-bench/none").exec()).header.revision);
  log(`etcd: three members at ${etcd.endpoints.join(", ")}`);
  const runs: Run[] = [];

  const lone = masterDirs(root, "lone");
  const agent = await ApiAgent.start(lone.conf, lone.data, lone.log);
  for (const c of [1, CONCURRENCY]) runs.push(await grants(agent, "lone master", c));
  await rentMember(agent);
  for (const c of [1, CONCURRENCY]) runs.push(await renterCalls(agent, "lone master", c));
  await agent.stop();

  const groupHa = { etcd_endpoints: etcd.endpoints, lease_ttl_s: TTL_S };
  const a = masterDirs(root, "ha-a", groupHa);
  const b = masterDirs(root, "ha-b", groupHa);
  const leader = await ApiAgent.start(a.conf, a.data, a.log);
  cleanup.add("stop the leader", () => leader.stop());
  log(`HA leader writable after ${(await writable(leader, 30_000)).toFixed(0)} ms`);
  const follower = await ApiAgent.start(b.conf, b.data, b.log);
  cleanup.add("stop the follower", () => follower.stop());
  await writable(follower, 30_000);
  for (const c of [1, CONCURRENCY]) runs.push(await grants(leader, "HA leader", c, revision));
  for (const c of [1, CONCURRENCY]) runs.push(await grants(follower, "HA follower (to the leader)", c, revision));
  await rentMember(leader);
  for (const c of [1, CONCURRENCY]) runs.push(await renterCalls(leader, "HA leader", c, revision));

  const state = await client.getAll().prefix("/batu/bench/tables/").exec();
  const stateBytes = state.kvs.reduce((n, kv) => n + kv.key.length + kv.value.length, 0);
  log(`the group's tables in etcd: ${state.kvs.length} rows, ${(stateBytes / 1048576).toFixed(2)} MiB (what the new leader loads)`);
  process.kill(leader.pid, "SIGKILL");
  const failover: { ms?: number; reason?: string } = await writable(follower, 60_000).then(
    (ms) => ({ ms }),
    async (e: Error) => ({ reason: `${e.message}\nthe election in etcd: ${await electionState(client)}` }),
  );
  if (failover.ms !== undefined) log(`failover: the follower took a write ${failover.ms.toFixed(0)} ms after the leader's SIGKILL (lease TTL ${TTL_S} s)`);
  else log(`FAILOVER FAILED: ${failover.reason}`);

  const baseline = (r: Run) => runs.find((b) => b.system === (r.system.endsWith(": renter call") ? "lone master: renter call" : "lone master") && b.concurrency === r.concurrency)!;
  console.log("");
  console.log(`POST /common/rent/grant (a new ledger row each) and renter calls (a nonce each), ${DURATION_S} s per run; etcd: 3 members on loopback`);
  console.log("| system | in flight | calls/s | p50 ms | p99 ms | etcd txns per call | p50 vs lone |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of runs) {
    const ratio = r.p50Ms / baseline(r).p50Ms;
    console.log(`| ${r.system} | ${r.concurrency} | ${r.perSecond.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.txnsPerWrite?.toFixed(2) ?? "-"} | ${ratio.toFixed(2)}x |`);
  }
  console.log(
    failover.ms !== undefined
      ? `failover (leader SIGKILLed → a write accepted through the follower): ${failover.ms.toFixed(0)} ms, lease TTL ${TTL_S} s`
      : `failover FAILED (leader SIGKILLed, lease TTL ${TTL_S} s): ${failover.reason!.split("\n")[0]}`,
  );
  if (!flags["no-json"]) {
    const dir = resolve(import.meta.dirname, "results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `ha-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}Z.json`);
    writeFileSync(file, JSON.stringify({ command: ["npm run bench:ha", ...process.argv.slice(2)].join(" "), runs, failoverMs: failover.ms ?? null, ...(failover.reason ? { failoverFailure: failover.reason } : {}), leaseTtlS: TTL_S, durationS: DURATION_S }, null, 2));
    log(`results: ${file}`);
  }
  if (failover.ms === undefined) process.exitCode = 1;
}

await cleanup.runMain(main, log);
