/**
 * Test helpers of the group: node keys from fixed seeds, TLS certificates, a group service over a
 * fresh store and conf dir, and a tiny peer server on loopback that answers like another agent (on a
 * plain port and a TLS one).
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cryptoWaitReady, sr25519PairFromSeed, sr25519Sign } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import type { HostConfig, MemberCapacity } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { nodeKeyAuthenticator, type Authenticator } from "../auth/signed-envelope.js";
import { openDb } from "../store/db.js";
import { createLogger } from "../lib/logger.js";
import { GroupMemberRepo } from "./member-repo.js";
import { GroupService } from "./service.js";
import { loadTlsIdentity, type TlsIdentity } from "../auth/tls-identity.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";
import type { RentalGrants, RentalTerms } from "../auth/rental-ledger.js";

/** A member's capacity as its heartbeats report it, for tests of the group's messages. */
export const TEST_CAPACITY: MemberCapacity = Object.freeze({
  cpu_threads: 4,
  memory_total_bytes: 8,
  memory_available_bytes: 4,
  disk_total_bytes: 100,
  disk_free_bytes: 50,
  gpu_total: 0,
  gpu_free: 0,
  vm_count: 0,
  version: "test",
});

/** A node's id and key, from a one-byte seed. Call `await cryptoWaitReady()` first. */
export function testNode(seed: number): { nodeId: string; key: Authenticator } {
  const pair = sr25519PairFromSeed(new Uint8Array(32).fill(seed));
  const nodeId = u8aToHex(pair.publicKey, undefined, false);
  return { nodeId, key: nodeKeyAuthenticator(nodeId, (m) => sr25519Sign(m, pair)) };
}

export { cryptoWaitReady };

const tlsIdentities = new Map<string, Promise<TlsIdentity>>();

/** A TLS key and self-signed certificate, made once per `name` in this process (openssl, as an agent makes its own). */
export function testTls(name = "peer"): Promise<TlsIdentity> {
  let made = tlsIdentities.get(name);
  if (!made) {
    made = loadTlsIdentity(mkdtempSync(join(tmpdir(), "batu-tls-")), name);
    tlsIdentities.set(name, made);
  }
  return made;
}

/** A TLS endpoint no one serves: what a service that never takes a call over TLS names as its own. */
export const UNSERVED_TLS: TlsEndpoint = { port: 10443, sha256: "e".repeat(64) };

/** A group service as an agent has it, over an in-memory store and a fresh conf dir. */
export function testGroupService(opts: {
  seed: number;
  hostConfig: HostConfig;
  joinToken?: string;
  agentPort?: number;
  now?: () => Date;
  /** Its own TLS endpoint (read at each use); default UNSERVED_TLS. */
  tls?: () => TlsEndpoint | undefined;
  /** A node's rental terms as this host's ledger has them; default none. */
  rentalTerms?: (nodeId: string) => RentalTerms;
  /** What each renter's grant of a node gives; default: not sent (a master of the earlier version). */
  rentalGrants?: (nodeId: string) => RentalGrants;
  /** Its conf dir (another service's: this one is that agent restarted); default a fresh one. */
  confDir?: string;
  /** On a master: heartbeats it takes per second at most (beat-pacing.ts); default the agent's. */
  maxHeartbeatsPerS?: number;
}): { service: GroupService; members: GroupMemberRepo; confDir: string; nodeId: string } {
  const { nodeId, key } = testNode(opts.seed);
  const confDir = opts.confDir ?? mkdtempSync(join(tmpdir(), "batu-group-"));
  const members = new GroupMemberRepo(openDb(":memory:"));
  const service = new GroupService({
    confDir,
    hostConfig: opts.hostConfig,
    nodeId,
    key,
    joinToken: () => opts.joinToken ?? "join-token-0123456789abcdef",
    adminToken: () => "admin-token-0123456789abcdef",
    tls: opts.tls ?? (() => UNSERVED_TLS),
    nickname: () => `node-${opts.seed}`,
    selfAddress: () => `127.0.0.1:${opts.agentPort ?? 10000}`,
    agentPort: () => opts.agentPort ?? 10000,
    members,
    rentalTerms: opts.rentalTerms ?? (() => new Map()),
    ...(opts.rentalGrants ? { rentalGrants: opts.rentalGrants } : {}),
    log: createLogger({ level: "silent" }),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.maxHeartbeatsPerS ? { maxHeartbeatsPerS: opts.maxHeartbeatsPerS } : {}),
  });
  return { service, members, confDir, nodeId };
}

/** One route of a peer server: parsed JSON body in, JSON out (an ApiError becomes its status and message). */
export type PeerRoute = (body: unknown, req: IncomingMessage) => unknown;

/** A peer server: its plain address, and the TLS port and certificate it serves the same routes with. */
export interface PeerServer {
  server: Server;
  tlsServer: TlsServer;
  /** `127.0.0.1:<plain port>`. */
  address: string;
  /** `127.0.0.1:<TLS port>`. */
  tlsAddress: string;
  tls: TlsEndpoint;
  /** Requests it got, by transport. */
  seen: { plain: number; tls: number };
  close(): Promise<void>;
}

/**
 * A tiny HTTP server on 127.0.0.1 standing in for another agent, on a plain port and a TLS one (with
 * the certificate `testTls(tlsName)`): each `METHOD /path` (query ignored) answers from its route;
 * anything else is a 404. `raw` routes write the response themselves.
 */
export async function peerServer(
  routes: Record<string, PeerRoute>,
  raw: Record<string, (req: IncomingMessage, res: ServerResponse, body: string) => void> = {},
  tlsName = "peer",
): Promise<PeerServer> {
  const seen = { plain: 0, tls: 0 };
  const handler: RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const key = `${req.method} ${(req.url ?? "").split("?")[0]}`;
      const text = Buffer.concat(chunks).toString("utf8");
      const own = raw[key];
      if (own) return own(req, res, text);
      const route = routes[key];
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (!route) return reply(404, { message: "no route" });
      try {
        reply(200, route(text ? JSON.parse(text) : undefined, req));
      } catch (e) {
        if (e instanceof ApiError) return reply(e.status, { message: e.message });
        reply(500, { message: (e as Error).message });
      }
    });
  };
  const server = createServer((req, res) => (seen.plain++, handler(req, res)));
  const identity = await testTls(tlsName);
  const tlsServer = createTlsServer({ key: identity.key, cert: identity.cert }, (req, res) => (seen.tls++, handler(req, res)));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", r));
  const tlsPort = (tlsServer.address() as AddressInfo).port;
  const closeOne = (s: Server | TlsServer) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())));
  return {
    server,
    tlsServer,
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    tlsAddress: `127.0.0.1:${tlsPort}`,
    tls: { port: tlsPort, sha256: identity.sha256 },
    seen,
    close: async () => {
      await Promise.all([closeOne(server), closeOne(tlsServer)]);
    },
  };
}
