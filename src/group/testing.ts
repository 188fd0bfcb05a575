/**
 * Test helpers of the group: node keys from fixed seeds, a group service over a fresh store and conf
 * dir, and a tiny peer server on loopback that answers like another agent.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cryptoWaitReady, sr25519PairFromSeed, sr25519Sign } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import type { HostConfig } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { nodeKeyAuthenticator, type Authenticator } from "../auth/signed-envelope.js";
import { openDb } from "../store/db.js";
import { createLogger } from "../lib/logger.js";
import { GroupMemberRepo } from "./member-repo.js";
import { GroupService } from "./service.js";
import type { RentalTerms } from "../auth/rental-ledger.js";

/** A node's id and key, from a one-byte seed. Call `await cryptoWaitReady()` first. */
export function testNode(seed: number): { nodeId: string; key: Authenticator } {
  const pair = sr25519PairFromSeed(new Uint8Array(32).fill(seed));
  const nodeId = u8aToHex(pair.publicKey, undefined, false);
  return { nodeId, key: nodeKeyAuthenticator(nodeId, (m) => sr25519Sign(m, pair)) };
}

export { cryptoWaitReady };

/** A group service as an agent has it, over an in-memory store and a fresh conf dir. */
export function testGroupService(opts: {
  seed: number;
  hostConfig: HostConfig;
  joinToken?: string;
  agentPort?: number;
  now?: () => Date;
  /** A node's rental terms as this host's ledger has them; default none. */
  rentalTerms?: (nodeId: string) => RentalTerms;
}): { service: GroupService; members: GroupMemberRepo; confDir: string; nodeId: string } {
  const { nodeId, key } = testNode(opts.seed);
  const confDir = mkdtempSync(join(tmpdir(), "batu-group-"));
  const members = new GroupMemberRepo(openDb(":memory:"));
  const service = new GroupService({
    confDir,
    hostConfig: opts.hostConfig,
    nodeId,
    key,
    joinToken: opts.joinToken ?? "join-token-0123456789abcdef",
    adminToken: "admin-token-0123456789abcdef",
    nickname: () => `node-${opts.seed}`,
    selfAddress: () => `127.0.0.1:${opts.agentPort ?? 10000}`,
    agentPort: () => opts.agentPort ?? 10000,
    members,
    rentalTerms: opts.rentalTerms ?? (() => new Map()),
    log: createLogger({ level: "silent" }),
    ...(opts.now ? { now: opts.now } : {}),
  });
  return { service, members, confDir, nodeId };
}

/** One route of a peer server: parsed JSON body in, JSON out (an ApiError becomes its status and message). */
export type PeerRoute = (body: unknown, req: IncomingMessage) => unknown;

/**
 * A tiny HTTP server on 127.0.0.1 standing in for another agent: each `METHOD /path` (query ignored)
 * answers from its route; anything else is a 404. `raw` routes write the response themselves.
 */
export async function peerServer(
  routes: Record<string, PeerRoute>,
  raw: Record<string, (req: IncomingMessage, res: ServerResponse, body: string) => void> = {},
): Promise<{ server: Server; address: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
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
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    server,
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}
