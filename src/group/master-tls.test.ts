import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GroupHeartbeat } from "../api/host.js";
import { createLogger } from "../lib/logger.js";
import { HeartbeatSender } from "./heartbeat.js";
import { masterProof, masterTlsSignature } from "./join-proof.js";
import { MasterTlsPin } from "./master-tls.js";
import { cryptoWaitReady, peerServer, testNode, testTls, type PeerServer, TEST_CAPACITY } from "./testing.js";

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

let master: ReturnType<typeof testNode>;
beforeAll(async () => {
  await cryptoWaitReady();
  master = testNode(1);
});

const capacity = TEST_CAPACITY;

/**
 * A master stand-in whose hello names its TLS port and the certificate `claim()` (signed by `signer`'s
 * node key, as the master's would be), and whose TLS port presents the certificate `testTls(tlsName)`.
 */
async function masterAt(opts: { tlsName?: string; claim?: (server: PeerServer) => string; signer?: ReturnType<typeof testNode>; reply?: () => object } = {}) {
  const beats: GroupHeartbeat[] = [];
  let server!: PeerServer;
  server = await peerServer(
    {
      "GET /master/group/hello": (_b, req) => {
        const challenge = new URL(req.url!, "http://x").searchParams.get("challenge") ?? "";
        const tls = { port: server.tls.port, sha256: opts.claim?.(server) ?? server.tls.sha256 };
        return {
          node_id: master.nodeId,
          group_name: "g1",
          proof: masterProof("join-token-0123456789abcdef", master.nodeId, "g1", challenge),
          tls_port: tls.port,
          cert_sha256: tls.sha256,
          tls_signature: masterTlsSignature((opts.signer ?? master).key, master.nodeId, challenge, tls),
        };
      },
      "POST /master/group/heartbeat": (body) => (beats.push(body as GroupHeartbeat), opts.reply?.() ?? { message: "ok" }),
    },
    {},
    opts.tlsName,
  );
  closers.push(server.close);
  return { server, beats };
}

describe("MasterTlsPin: a member pins its master's certificate by the master's node id", () => {
  it("learns the TLS endpoint from a hello the master's node key signed, and asks once", async () => {
    const { server } = await masterAt();
    const pin = new MasterTlsPin();
    expect(await pin.endpoint(server.address, master.nodeId, 2000)).toEqual({ address: server.tlsAddress, sha256: server.tls.sha256 });
    await pin.endpoint(server.address, master.nodeId, 2000);
    expect(server.seen.plain).toBe(1);
    pin.forget();
    await pin.endpoint(server.address, master.nodeId, 2000);
    expect(server.seen.plain).toBe(2);
  });

  it("believes no endpoint signed by another key, nor a host that is another node, nor a member without a master node id", async () => {
    const forged = await masterAt({ signer: testNode(7) });
    await expect(new MasterTlsPin().endpoint(forged.server.address, master.nodeId, 2000)).rejects.toThrow(/names no TLS certificate signed by its node key/);
    await expect(new MasterTlsPin().endpoint(forged.server.address, testNode(8).nodeId, 2000)).rejects.toThrow(/is node .*, not this member's master/);
    await expect(new MasterTlsPin().endpoint(forged.server.address, undefined, 2000)).rejects.toThrow(/join the group again/);
  });
});

describe("HeartbeatSender over TLS", () => {
  function sender(server: PeerServer) {
    const s = new HeartbeatSender({
      intervalMs: 1000,
      nodeId: testNode(2).nodeId,
      key: testNode(2).key,
      master: () => server.address,
      masterNodeId: () => master.nodeId,
      agentPort: () => 10000,
      tls: () => ({ port: 10443, sha256: "d".repeat(64) }),
      nickname: () => "m",
      capacity: async () => capacity,
      log: createLogger({ level: "silent" }),
    });
    closers.push(() => s.stop());
    return s;
  }

  it("beats to the master's TLS port, naming its own certificate, signed", async () => {
    const { server, beats } = await masterAt();
    const s = sender(server);
    await s.beat();
    expect(s.status).toMatchObject({ reachable: true, lastError: null });
    expect(server.seen).toEqual({ plain: 1, tls: 1 });
    expect(beats[0]).toMatchObject({ tls_port: 10443, cert_sha256: "d".repeat(64) });
  });

  it("waits as long as its master asks between beats (at most 30 s), and its own period otherwise", async () => {
    let reply: object = { message: "ok", next_beat_ms: 5000 };
    const { server, beats } = await masterAt({ reply: () => reply });
    const s = sender(server);
    expect(s.periodMs).toBe(1000);
    await s.beat();
    expect(s.periodMs).toBe(5000);
    reply = { message: "ok", next_beat_ms: 10 };
    await s.beat();
    expect(s.periodMs).toBe(1000);
    reply = { message: "ok", next_beat_ms: 3_600_000 };
    await s.beat();
    expect(s.periodMs).toBe(30_000);
    // A master of the first protocol does not pace.
    reply = { message: "ok" };
    await s.beat();
    expect(s.periodMs).toBe(1000);
    expect(beats).toHaveLength(4);
  });

  it("sends nothing to a TLS port whose certificate is not the one the master's key vouched for", async () => {
    // The hello (as the master signed it) names the real certificate; the TLS port shows another one.
    const real = (await testTls()).sha256;
    const { server, beats } = await masterAt({ tlsName: "impostor", claim: () => real });
    const s = sender(server);
    await s.beat();
    expect(s.status.reachable).toBe(false);
    expect(s.status.lastError).toMatch(/its TLS certificate \(sha256 [0-9a-f]{16}…\) is not the one pinned for it/);
    expect(server.seen.tls).toBe(0);
    expect(beats).toEqual([]);
  });
});
