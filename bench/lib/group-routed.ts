/**
 * The one real member: an agent joined to the master (`POST /slave/group/join`, batu's own proof
 * handshake), with one closed task of the bench's renter in its store, rented to that renter on both
 * ledgers (the master authorizes routed calls; the member authorizes direct ones). Then
 * `tasks/<id>` on the member directly and through the master, interleaved call by call.
 */
import { Keyring } from "@polkadot/keyring";
import { sr25519PairFromSeed, sr25519Sign, sr25519Verify } from "@polkadot/util-crypto";
import type { KeyringPair } from "@polkadot/keyring/types";
import { u8aToHex } from "@polkadot/util";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ApiAgent } from "./api-agent.js";
import { seedTasks } from "./api-store.js";
import { masterHandling } from "./group-masterlog.js";
import { quantile } from "./stats.js";
import { checkInterrupted, now, stopChild } from "./proc.js";
import { spawn } from "node:child_process";

export interface RoutedMember {
  agent: ApiAgent;
  taskId: string;
  renter: string;
  /** The `tasks/<id>` body each way: the same call, with the session id of the ledger that checks it. */
  body: { direct: string; routed: string };
  /** ms: the member's first start (empty store), its start with the task, its join. */
  setupMs: { firstStart: number; seed: number; secondStart: number; join: number };
}

const until = () => new Date(Date.now() + 86_400_000).toISOString();

/** A session id from `agent` for `nodeId`, and the renter's signature of it (a reusable identity). */
async function session(agent: ApiAgent, nodeId: string, pair: KeyringPair): Promise<{ session_id: string; session_id_sign: string }> {
  const nonce = randomBytes(27).toString("hex");
  const r = await agent.post("/api/v1/mining_nodes/session_id", { peer_nodes_list: [nodeId], additional: {}, wallet: pair.address, nonce, sign: u8aToHex(pair.sign(nonce)) });
  if (r.json.errcode !== 0) throw new Error(`session_id from ${agent.url}: ${r.bytes.toString().slice(0, 300)}`);
  const id: string = r.json.message.session_id;
  return { session_id: id, session_id_sign: u8aToHex(pair.sign(id)) };
}

async function grant(agent: ApiAgent, nodeId: string, wallet: string): Promise<void> {
  const r = await agent.post("/common/rent/grant", { node_id: nodeId, wallet, until: until() });
  if (r.status !== 200) throw new Error(`rent/grant on ${agent.url}: HTTP ${r.status}: ${r.bytes.toString().slice(0, 300)}`);
}

/**
 * Starts the member agent (twice: once to create its store and identity, then with the seeded task),
 * joins it to `master`, grants the rental on both ledgers and fetches a session id from each.
 * `onAgent` is told every agent started, so the caller's cleanup can stop it.
 */
export async function startRoutedMember(opts: {
  root: string;
  master: ApiAgent;
  masterJoinToken: string;
  baseImage: string;
  onAgent: (a: ApiAgent) => void;
}): Promise<RoutedMember> {
  const confDir = join(opts.root, "member/conf");
  const dataDir = join(opts.root, "member/data");
  const logPath = join(opts.root, "member.log");
  const pair = new Keyring({ type: "sr25519" }).addFromUri("//batu-bench-group-renter");
  const renter = pair.address;

  let agent = await ApiAgent.start(confDir, dataDir, logPath);
  opts.onAgent(agent);
  const firstStart = agent.startMs;
  const nodeId = agent.nodeId;
  await grant(agent, nodeId, renter);
  await agent.stop();
  const seeded = await seedTasks({ dataDir, root: join(opts.root, "member"), owner: renter, count: 1, baseImage: opts.baseImage });
  agent = await ApiAgent.start(confDir, dataDir, logPath);
  opts.onAgent(agent);
  if (agent.nodeId !== nodeId) throw new Error("the member's node id changed across its restart");

  const t0 = now();
  const joined = await agent.post("/slave/group/join", { master: opts.master.url.replace(/^http:\/\//, ""), token: opts.masterJoinToken });
  if (joined.status !== 200) throw new Error(`member join: HTTP ${joined.status}: ${joined.bytes.toString().slice(0, 300)}`);
  const joinMs = now() - t0;
  await grant(opts.master, nodeId, renter);

  const taskId = seeded.ids[0]!;
  const body = (s: { session_id: string; session_id_sign: string }) => JSON.stringify({ peer_nodes_list: [nodeId], additional: {}, ...s });
  const direct = body(await session(agent, nodeId, pair));
  const routed = body(await session(opts.master, nodeId, pair));
  return {
    agent,
    taskId,
    renter,
    body: { direct, routed },
    setupMs: { firstStart, seed: seeded.ms, secondStart: agent.startMs, join: joinMs },
  };
}

/** One timed POST: ms from the call to the last byte of the reply. */
async function timedPost(url: string, body: string): Promise<{ ms: number; status: number; bytes: Buffer }> {
  const t0 = now();
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { ms: now() - t0, status: res.status, bytes };
}

export interface RoutedRun {
  direct: number[];
  routed: number[];
  /** The same direct call through a bare node:http relay to the member's TLS port (bare-relay.mjs): a hop's floor. */
  relayed: number[];
  replyBytes: { direct: number; routed: number };
  /** Whether both ways answered the very same bytes. */
  sameReply: boolean;
  /**
   * ms each agent took per measured call, from its own log (fastify's responseTime): the master for a
   * routed call, the member for a direct one and for a routed one (the calls alternate, direct first).
   */
  handling: { master: number[]; memberDirect: number[]; memberRouted: number[] };
}

/**
 * `tasks/<id>` sequentially, direct then routed, `calls` times each after `warmup` pairs (alternating
 * cancels slow drifts of a shared machine). Every reply must be errcode 0 for the task.
 */
export async function measureRouted(master: ApiAgent, m: RoutedMember, relayUrl: string, calls: number, warmup: number): Promise<RoutedRun> {
  const path = `/api/v1/tasks/${m.taskId}`;
  const ways = {
    direct: { url: `${m.agent.url}${path}`, body: m.body.direct },
    routed: { url: `${master.url}${path}`, body: m.body.routed },
    relayed: { url: `${relayUrl}${path}`, body: m.body.direct },
  };
  const out: RoutedRun = { direct: [], routed: [], relayed: [], replyBytes: { direct: 0, routed: 0 }, sameReply: true, handling: { master: [], memberDirect: [], memberRouted: [] } };
  const [master0, member0] = [master.logBytes(), m.agent.logBytes()];
  const first: Partial<Record<"direct" | "routed" | "relayed", Buffer>> = {};
  for (let i = 0; i < warmup + calls; i++) {
    checkInterrupted();
    for (const way of ["direct", "routed", "relayed"] as const) {
      const r = await timedPost(ways[way].url, ways[way].body);
      const json = JSON.parse(r.bytes.toString("utf8")) as { errcode?: number; message?: { task_id?: string } };
      if (r.status !== 200 || json.errcode !== 0 || json.message?.task_id !== m.taskId) {
        throw new Error(`tasks/<id> ${way}: HTTP ${r.status}: ${r.bytes.toString().slice(0, 300)}`);
      }
      first[way] ??= r.bytes;
      if (i >= warmup) out[way].push(r.ms);
    }
  }
  const route = `POST ${path}`;
  const onMaster = (masterHandling(master.logPath, master0, master.logBytes())[route]?.ms ?? []).slice(warmup);
  const onMember = (masterHandling(m.agent.logPath, member0, m.agent.logBytes())[route]?.ms ?? []).slice(3 * warmup);
  // The member logs three calls per round: direct, routed, relayed (a direct one too).
  out.handling = { master: onMaster, memberDirect: onMember.filter((_, i) => i % 3 === 0), memberRouted: onMember.filter((_, i) => i % 3 === 1) };
  out.replyBytes = { direct: first.direct!.length, routed: first.routed!.length };
  out.sameReply = first.direct!.equals(first.routed!);
  return out;
}

/** µs per sr25519 signature and per check of one, in this process: what the master and the member each add per call. */
export function signatureProbe(n = 300): { signUs: number; verifyUs: number } {
  const pair = sr25519PairFromSeed(new Uint8Array(32).fill(7));
  const message = `batu-forward/1\n${JSON.stringify(["POST", "/api/v1/tasks/x", "0".repeat(64), "5Renter", String(Date.now()), "0".repeat(32)])}`;
  const sig = sr25519Sign(message, pair);
  const time = (fn: () => unknown) => {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = now();
      fn();
      xs.push((now() - t) * 1000);
    }
    return quantile(xs, 0.5)!;
  };
  return { signUs: time(() => sr25519Sign(message, pair)), verifyUs: time(() => sr25519Verify(message, sig, pair.publicKey)) };
}

/**
 * Starts bare-relay.mjs toward the member's TLS port: the floor any routed call pays (one more
 * process, HTTP in, TLS out over a kept connection). Returns its URL and how to stop it.
 */
export async function startRelay(memberTlsUrl: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const { hostname, port } = new URL(memberTlsUrl);
  const child = spawn(process.execPath, [join(import.meta.dirname, "bare-relay.mjs"), hostname, port], { stdio: ["pipe", "pipe", "inherit"] });
  const relayPort = await new Promise<number>((resolvePort, reject) => {
    let out = "";
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /port (\d+)/.exec(out);
      if (m) resolvePort(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`bare-relay exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${relayPort}`, stop: () => stopChild(child, 2_000) };
}
