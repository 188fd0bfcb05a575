/**
 * Simulated group members: light heartbeat clients in the bench process, each with its own sr25519
 * node key and address, speaking the real protocol through batu's own code: `HostClient.recordJoin`
 * to join, then heartbeats every interval, as HeartbeatSender does (the next beat is scheduled an
 * interval after the previous one ended, or as long as the master's answer asked, `next_beat_ms`,
 * if longer: its pacing, beat-pacing.ts): with a MAC after a session-key exchange (`proof:
 * "session"`, what agents do), or signed by the node key (`"signature"`, the first protocol).
 * A session is opened at each member's first beat (not counted in its beat's time). Nothing listens at their
 * addresses: the master never calls a member unless a renter call is routed to it.
 */
import { u8aToHex } from "@polkadot/util";
import { blake2AsU8a, sr25519PairFromSeed, sr25519Sign } from "@polkadot/util-crypto";
import type { MemberCapacity } from "../../src/api/host.js";
import { macHeartbeat, signHeartbeat } from "../../src/group/heartbeat.js";
import { MAX_PACED_INTERVAL_MS } from "../../src/group/beat-pacing.js";
import { openSession } from "../../src/group/session-exchange.js";
import { SessionKeys } from "../../src/group/session-keys.js";
import { rentalTermsDigest } from "../../src/group/rental-terms.js";
import { nodeKeyAuthenticator, type Authenticator } from "../../src/auth/signed-envelope.js";
import { HostApiError, HostClient } from "../../src/sdk/index.js";
import type { TlsEndpoint } from "../../src/sdk/pinned-tls.js";
import { now } from "./proc.js";

const GiB = 2 ** 30;

export interface SimMember {
  index: number;
  /** Hex public key without 0x: the node id the master records at join and checks beats against. */
  nodeId: string;
  /** 127.0.0.1:<fake port>, distinct per member. */
  address: string;
  nickname: string;
  sign: (message: string) => Uint8Array;
  capacity: MemberCapacity;
  /** Where it serves TLS and its certificate, named in its heartbeats (the master then calls it there); none: never called. */
  tls?: TlsEndpoint;
}

/** `count` members with deterministic keys (seeded by index) and ports from `basePort` on. */
export function simMembers(count: number, basePort: number): SimMember[] {
  return Array.from({ length: count }, (_, i) => {
    const pair = sr25519PairFromSeed(blake2AsU8a(`batu-bench-group-member-${i}`, 256));
    const gpus = [0, 1, 2, 4, 8][i % 5]!;
    const memory = [32, 64, 128, 256][i % 4]! * GiB;
    return {
      index: i,
      nodeId: u8aToHex(pair.publicKey).slice(2),
      address: `127.0.0.1:${basePort + i}`,
      nickname: `sim-${String(i).padStart(3, "0")}`,
      sign: (message: string) => sr25519Sign(message, pair),
      capacity: {
        cpu_threads: [16, 32, 64, 128][i % 4]!,
        memory_total_bytes: memory,
        memory_available_bytes: Math.floor(memory * 0.6),
        disk_total_bytes: 2000 * GiB,
        disk_free_bytes: 1200 * GiB,
        gpu_total: gpus,
        gpu_free: Math.floor(gpus / 2),
        vm_count: i % 7,
        version: "0.1.0",
      },
    };
  });
}

/** One heartbeat as the member saw it: when it was sent (now()), how long the HTTP call took. */
export interface BeatSample {
  member: number;
  atMs: number;
  ms: number;
  /** null when the master answered ok; else the HTTP status (0: no reply) and its reason. */
  error: { status: number; message: string } | null;
}

/**
 * Joins every member to the master at `masterAddress`, `concurrency` at a time, with the seed 000
 * bearer join of the operator (`adminToken`: only the operator records a node id without its key's
 * proof, and the simulated members have no agent). Resolves with each join's ms.
 */
export async function joinAll(masterAddress: string, adminToken: string, members: SimMember[], concurrency = 16): Promise<number[]> {
  const client = new HostClient(masterAddress, undefined, 10_000);
  const ms: number[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < members.length; i = next++) {
      const m = members[i]!;
      const t0 = now();
      const reply = await client.recordJoin({ address: m.address, node_id: m.nodeId, nickname: m.nickname }, adminToken);
      ms.push(now() - t0);
      if (reply.address !== m.address) throw new Error(`member ${i} recorded as ${reply.address}, not ${m.address}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, members.length) }, worker));
  return ms;
}

/** The heartbeat loops of all simulated members. */
export class SimGroup {
  readonly samples: BeatSample[] = [];
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = true;
  /** The digest of the rental terms each member last got, sent back as a member does (so terms are resent only when changed). */
  private readonly termsDigests = new Map<string, string>();
  /** The wait each member's master last asked for (`next_beat_ms`, at most 30 s as HeartbeatSender takes it). */
  private readonly paced = new Map<number, number>();
  /** Each member's session key with the master, once agreed (session proofs). */
  private readonly keys = new Map<string, { id: string; key: Authenticator }>();
  /** Each member's side of its session keys, by node id: what checks the master's calls to it (ForwardVerifier). */
  readonly sessions = new Map<string, SessionKeys>();

  constructor(
    /** Where the beats go (`retarget` moves them: the bench's floor servers). */
    private masterAddress: string,
    private readonly members: SimMember[],
    private readonly intervalMs: number,
    private readonly proof: { kind: "session"; masterNodeId: string } | { kind: "signature" } = { kind: "signature" },
  ) {}

  /** Member i's first beat is at i/N of an interval (plus up to 2 % jitter): beats spread evenly. */
  start(): void {
    this.stopped = false;
    const n = this.members.length;
    for (const m of this.members) {
      const offset = (m.index / n) * this.intervalMs + Math.random() * this.intervalMs * 0.02;
      this.schedule(m, offset);
    }
  }

  /**
   * Sends the beats to `address` from now on (stopped first): the bench's floor servers get the same
   * beats, with the session keys agreed with the master, which they do not check.
   */
  retarget(address: string): void {
    if (!this.stopped) throw new Error("retarget: stop the beats first");
    this.masterAddress = address;
  }

  /** No new beats; waits for those in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private schedule(m: SimMember, delayMs: number): void {
    if (this.stopped) return;
    this.timers.set(
      m.index,
      setTimeout(() => {
        const p = this.beat(m).finally(() => {
          this.inFlight.delete(p);
          this.schedule(m, this.periodOf(m));
        });
        this.inFlight.add(p);
      }, delayMs),
    );
  }

  /** The wait before member `m`'s next beat, as HeartbeatSender.periodMs. */
  periodOf(m: SimMember): number {
    return Math.max(this.intervalMs, this.paced.get(m.index) ?? 0);
  }

  /** One beat, as HeartbeatSender.beat sends it (same timeout rule); the outcome goes to `samples`. */
  private async beat(m: SimMember): Promise<void> {
    const timeoutMs = Math.max(500, Math.min(2000, this.intervalMs));
    const client = new HostClient(this.masterAddress, undefined, timeoutMs);
    const key = nodeKeyAuthenticator(m.nodeId, m.sign);
    const digest = this.termsDigests.get(m.nodeId);
    const report = {
      node_id: m.nodeId,
      address: m.address,
      nickname: m.nickname,
      sent_at: Date.now(),
      capacity: m.capacity,
      ...(m.tls ? { tls_port: m.tls.port, cert_sha256: m.tls.sha256 } : {}),
      ...(digest ? { rental_terms_digest: digest } : {}),
    };
    let hb = signHeartbeat(report, key);
    if (this.proof.kind === "session") {
      const { masterNodeId } = this.proof;
      if (!this.keys.has(m.nodeId)) {
        const own = new SessionKeys();
        await openSession({ nodeId: m.nodeId, masterNodeId, key, sessions: own, now: new Date(), send: (body) => client.openSession(body) }).catch(() => undefined);
        const held = own.current(masterNodeId);
        if (held) {
          this.keys.set(m.nodeId, held);
          this.sessions.set(m.nodeId, own);
        }
      }
      const held = this.keys.get(m.nodeId);
      // No key (the exchange failed): this beat is signed, and the next one asks again.
      if (held) hb = macHeartbeat({ ...report, sent_at: Date.now() }, held);
    }
    const atMs = now();
    let error: BeatSample["error"] = null;
    try {
      const reply = await client.heartbeat(hb);
      this.paced.set(m.index, Math.min(MAX_PACED_INTERVAL_MS, reply.next_beat_ms ?? 0));
      if (reply.rental_terms) this.termsDigests.set(m.nodeId, rentalTermsDigest(new Map(reply.rental_terms.renters.map((r) => [r.renter, r.ends_at]))));
    } catch (e) {
      error = e instanceof HostApiError ? { status: e.status, message: e.message } : { status: 0, message: (e as Error).message };
    }
    this.samples.push({ member: m.index, atMs, ms: now() - atMs, error });
  }

  /** The beats sent in [fromMs, toMs) (now() times). */
  between(fromMs: number, toMs: number): BeatSample[] {
    return this.samples.filter((s) => s.atMs >= fromMs && s.atMs < toMs);
  }
}
