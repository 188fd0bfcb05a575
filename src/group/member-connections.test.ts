import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { DbcError } from "../api/v1/envelope.js";
import { sendToPeer } from "./forward.js";
import { MemberConnections } from "./member-connections.js";
import type { GroupPeer } from "./master-role.js";
import { testTls } from "./testing.js";

const servers: Server[] = [];
const pools: MemberConnections[] = [];
afterEach(async () => {
  pools.splice(0).forEach((p) => p.close());
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

/** A member stand-in over TLS: answers `{"ok":n}` (never after `answers` calls), counting the connections it accepted. */
async function member(opts: { answers?: number } = {}) {
  const seen = { connections: 0, calls: 0 };
  const tls = await testTls();
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    req.resume();
    req.on("end", () => {
      if (++seen.calls <= (opts.answers ?? Infinity)) res.end(JSON.stringify({ ok: seen.connections }));
    });
  });
  server.on("secureConnection", () => seen.connections++);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { seen, server, address: `127.0.0.1:${port}`, tls: { port, sha256: tls.sha256 } };
}

/** The member as routing sees it: the stand-in's TLS port doubles as its recorded port here. */
const peer = (address: string, state: GroupPeer["state"] = "alive"): GroupPeer => ({
  nodeId: "f".repeat(64),
  address,
  nickname: "",
  state,
  lastSeen: "2026-01-01T00:00:00.000Z",
  capacity: null,
  tls: { port: Number(address.split(":")[1]), sha256: pinned },
});
let pinned = "";
const call = { method: "POST", url: "/api/v1/tasks", bodyText: "{}", renter: null };

async function pinnedTo(): Promise<void> {
  pinned = (await testTls()).sha256;
}

function pool(idleMs = 2000): MemberConnections {
  const p = new MemberConnections(idleMs);
  pools.push(p);
  return p;
}

async function failure(p: Promise<unknown>): Promise<DbcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DbcError) return e;
    throw e;
  }
  throw new Error("did not fail");
}

describe("MemberConnections", () => {
  beforeAll(pinnedTo);

  it("keeps one connection to an alive member across calls", async () => {
    const m = await member();
    const p = pool();
    for (let i = 0; i < 3; i++) {
      const r = await sendToPeer(peer(m.address), call, {}, 10_000, p.agentFor(peer(m.address)));
      expect(r.status).toBe(200);
    }
    expect(m.seen.connections).toBe(1);
    expect(p.agentFor(peer(m.address))).toBe(p.agentFor(peer(m.address)));
  });

  it("gives a member that is not alive a fresh connection per call, and forgets its pool", async () => {
    const m = await member();
    const p = pool();
    await sendToPeer(peer(m.address), call, {}, 10_000, p.agentFor(peer(m.address)));
    for (const state of ["suspect", "dead"] as const) expect(p.agentFor(peer(m.address, state))).toBe(false);
    expect(p.size).toBe(0);
    await sendToPeer(peer(m.address, "suspect"), call, {}, 2000, p.agentFor(peer(m.address, "suspect")));
    await sendToPeer(peer(m.address), call, {}, 10_000, p.agentFor(peer(m.address)));
    expect(m.seen.connections).toBe(3);
  });

  it("starts over for a new address, and after a socket was idle longer than idleMs", async () => {
    const [a, b] = [await member(), await member()];
    const p = pool(50);
    const first = p.agentFor(peer(a.address));
    await sendToPeer(peer(a.address), call, {}, 10_000, first);
    expect(p.agentFor(peer(b.address))).not.toBe(first);
    await sendToPeer(peer(b.address), call, {}, 10_000, p.agentFor(peer(b.address)));
    await sleep(200);
    await sendToPeer(peer(b.address), call, {}, 10_000, p.agentFor(peer(b.address)));
    expect([a.seen.connections, b.seen.connections]).toEqual([1, 2]);
  });

  it("a member that closed its connections (restarted) is reached on a new one", async () => {
    const m = await member();
    const p = pool();
    await sendToPeer(peer(m.address), call, {}, 10_000, p.agentFor(peer(m.address)));
    m.server.closeIdleConnections();
    await sleep(50);
    const r = await sendToPeer(peer(m.address), call, {}, 10_000, p.agentFor(peer(m.address)));
    expect(r.status).toBe(200);
    expect(m.seen.connections).toBe(2);
  });

  it("a kept socket still has the reply bound: a member that stops answering fails with -32701", async () => {
    const m = await member({ answers: 1 });
    const p = pool();
    await sendToPeer(peer(m.address), call, {}, 300, p.agentFor(peer(m.address)));
    const e = await failure(sendToPeer(peer(m.address), call, {}, 300, p.agentFor(peer(m.address))));
    expect(m.seen.connections).toBe(1);
    expect([e.errcode, e.message]).toEqual([-32701, `create node request failed: node ${"f".repeat(64)} is unreachable: no reply within 300 ms`]);
  });
});
