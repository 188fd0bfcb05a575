// TLS on the LAN, as an operator and a group live it: every route over HTTPS with the node's own
// self-signed certificate; the admin token refused over plain HTTP from another host; a group whose
// members pin each other's certificates by node id, so a host with another certificate gets not a
// byte; tokens rotated without a restart.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { call, runCli, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { until } from "./helpers/wait.js";
import { DbcClient } from "./helpers/dbc-client.js";
import { CommandError, Lan, netnsUnavailableReason, run, type NetnsHost } from "./helpers/netns.js";
import { loadTlsIdentity } from "../src/auth/tls-identity.js";

/** curl's outcome: its exit code (90: the pinned key did not match), the HTTP status and the body. */
interface Curled {
  exit: number;
  status: number;
  body: any;
}

/** Runs curl (argv, no shell), from `wrap` (a network namespace) or from here. */
async function curl(args: string[], wrap: string[] = []): Promise<Curled> {
  let stdout = "";
  let exit = 0;
  try {
    ({ stdout } = await run([...wrap, "curl", "-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}", ...args], 15_000));
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    exit = Number(e.code);
  }
  const cut = stdout.lastIndexOf("\n");
  const text = stdout.slice(0, Math.max(cut, 0));
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { exit, status: Number(stdout.slice(cut + 1)) || 0, body };
}

const bearer = (token: string) => ["-H", `Authorization: Bearer ${token}`];

const agents = new TestAgents();
afterAll(() => agents.cleanup());

describe("tls: one agent", () => {
  let a: AgentProcess;
  beforeAll(async () => {
    a = await agents.start();
  });

  it("serves every route over HTTPS with its own certificate: the host API with the admin token, the renter API too", async () => {
    // As the README shows: on the host itself, trusting conf/tls.crt.
    const local = await curl(["--cacert", join(a.confDir, "tls.crt"), ...bearer(a.adminToken), `${a.tlsUrl}/common/config`]);
    expect(local).toMatchObject({ exit: 0, status: 200, body: { batu: true } });
    // From anywhere: the public key pinned, as `batu tls` prints it.
    const printed = await runCli(["tls", "--conf-dir", a.confDir, "--json"]);
    expect(printed.code, printed.stderr).toBe(0);
    const pins = JSON.parse(printed.stdout);
    expect(pins).toMatchObject({ sha256: a.certSha256, curl_pin: a.curlPin });
    const pinned = await curl(["-k", "--pinnedpubkey", pins.curl_pin, ...bearer(a.adminToken), `${a.tlsUrl}/master/group/list`]);
    expect(pinned).toMatchObject({ exit: 0, status: 200, body: { member: [] } });
    // Another key than the pinned one: curl stops before sending anything.
    const wrongPin = await curl(["-k", "--pinnedpubkey", `sha256//${Buffer.alloc(32).toString("base64")}`, ...bearer(a.adminToken), `${a.tlsUrl}/common/config`]);
    expect(wrongPin.exit).toBe(90);
    // The renter API on both ports, as DBC's clients expect it on the plain one.
    for (const base of [a.url, a.tlsUrl]) {
      const r = await curl(["-k", "-d", "{}", `${base}/api/v1/mining_nodes`]);
      expect(r).toMatchObject({ exit: 0, status: 400, body: { errcode: -25 } });
    }
    // The certificate's own SHA-256 is what the agent names.
    expect(a.certSha256).toBe((await loadTlsIdentity(a.confDir, a.nodeId)).sha256);
  });

  it("rotates the admin token without a restart: the old one is refused at once, on both ports", async () => {
    const old = a.adminToken;
    expect((await call(`${a.url}/common/config`, { token: old })).status).toBe(200);
    const r = await runCli(["token", "rotate", "admin", "--conf-dir", a.confDir, "--port", String(a.port), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ message: "ok", token: "admin", file: join(a.confDir, "admin.token") });
    const fresh = readFileSync(join(a.confDir, "admin.token"), "utf8").trim();
    expect(fresh).not.toBe(old);
    expect(await call(`${a.url}/common/config`, { token: old })).toMatchObject({ status: 401, body: { message: "wrong bearer token" } });
    expect((await curl(["-k", ...bearer(old), `${a.tlsUrl}/common/config`])).status).toBe(401);
    expect((await call(`${a.url}/common/config`, { token: fresh })).status).toBe(200);
    expect((await curl(["-k", ...bearer(fresh), `${a.tlsUrl}/common/config`])).status).toBe(200);
    // The same process all along, and neither token in its log.
    expect(a.child.exitCode).toBeNull();
    expect(a.logs().match(/"agent listening"/g)).toHaveLength(1);
    expect(a.logs()).not.toContain(old);
    expect(a.logs()).not.toContain(fresh);
    a.adminToken = fresh;
  });
});

describe("tls: a group pins its members' certificates by node id", () => {
  let master: AgentProcess;
  let member: AgentProcess;
  const groupList = async () => (await call(`${master.url}/master/group/list`, { token: master.adminToken })).body;
  const memberOnMaster = async () => (await groupList()).member.find((m: any) => m.node_id === member.nodeId);
  const myMaster = async () => (await call(`${member.url}/slave/group/my/master`, { token: member.adminToken })).body;
  /** Node info of the member, asked of the master: routed to the member over TLS. */
  const routed = () => new DbcClient(master.url, member.nodeId).call("mining_nodes", {});
  const impostors: Server[] = [];
  afterEach(async () => {
    for (const s of impostors.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  /** An HTTPS server on the member's TLS port with this key and certificate, counting what reaches it. */
  async function impostorOn(port: number, tls: { key: string; cert: string }): Promise<{ requests: string[] }> {
    const seen = { requests: [] as string[] };
    const server = createServer(tls, (req, res) => {
      seen.requests.push(`${req.method} ${req.url}`);
      req.resume();
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ errcode: 0, message: "the impostor answers" }));
    });
    impostors.push(server);
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    expect((server.address() as AddressInfo).port).toBe(port);
    return seen;
  }

  beforeAll(async () => {
    await cryptoWaitReady();
    master = await agents.start({ dir: agents.dir("batu-tls-") });
    member = await agents.start({ dir: agents.dir("batu-tls-"), extraArgs: ["--heartbeat-ms", "200"] });
    const joined = await call(`${member.url}/slave/group/join`, {
      token: member.adminToken,
      body: { master: master.url.replace("http://", ""), token: master.joinToken },
    });
    expect(joined.status, JSON.stringify(joined.body)).toBe(200);
  });

  it("the join pins the member's certificate and TLS port on the master; heartbeats and routed calls flow over TLS", async () => {
    const m = await until(memberOnMaster, (m) => m?.capacity != null);
    expect(m).toMatchObject({ address: `127.0.0.1:${member.port}`, tls_port: member.tlsPort, cert_sha256: member.certSha256, state: "alive" });
    expect(await until(myMaster, (b) => b.reachable === true)).toMatchObject({ last_error: null });
    const r = await routed();
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
  });

  it("a host on the member's port with another certificate gets not a byte from the master; with the member's own, it does", async () => {
    const port = member.tlsPort;
    await agents.stop(member, "kill");
    // The master still thinks the member alive (it is not suspect for 10 s) and calls it at once.
    const other = await loadTlsIdentity(agents.dir("batu-tls-impostor-"), "impostor");
    const impostor = await impostorOn(port, other);
    const refused = await routed();
    expect(refused.body.errcode).toBe(-32701);
    expect(refused.body.message).toMatch(new RegExp(`node ${member.nodeId} is unreachable: its TLS certificate \\(sha256 [0-9a-f]{16}…\\) is not the one pinned for it`));
    expect(impostor.requests).toEqual([]);
    for (const s of impostors.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    // The member's own key and certificate (as a thief of conf/ would have them): the pin is what decided.
    const own = { key: readFileSync(join(member.confDir, "tls.key"), "utf8"), cert: readFileSync(join(member.confDir, "tls.crt"), "utf8") };
    const holder = await impostorOn(port, own);
    expect((await routed()).body).toEqual({ errcode: 0, message: "the impostor answers" });
    expect(holder.requests).toEqual(["POST /api/v1/mining_nodes"]);
  });

  it("a member back on new ports is called there: its signed heartbeats name its TLS port", async () => {
    member = await agents.restart(member);
    const m = await until(memberOnMaster, (m) => m?.tls_port === member.tlsPort && m.state === "alive");
    expect(m.cert_sha256).toBe(member.certSha256);
    expect((await routed()).body.errcode).toBe(0);
  });

  it("a master whose certificate is made anew is followed by its member: the master's node key vouches for it", async () => {
    const before = master.certSha256;
    await agents.stop(master);
    rmSync(join(master.confDir, "tls.key"));
    rmSync(join(master.confDir, "tls.crt"));
    master = await agents.restart(master, { port: master.port });
    expect(master.certSha256).not.toBe(before);
    await until(myMaster, (b) => b.reachable === true && Date.parse(b.last_heartbeat) > Date.now() - 2000, 15_000, "member beating again");
    expect((await routed()).body.errcode).toBe(0);
  });

  it("rotates the join token without a restart: a host with the old one can no longer join; members stay", async () => {
    const old = master.joinToken;
    const r = await runCli(["token", "rotate", "join", "--conf-dir", master.confDir, "--port", String(master.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rotated the join token: the new one is in .*join\.token/);
    const fresh = readFileSync(join(master.confDir, "join.token"), "utf8").trim();
    expect(fresh).not.toBe(old);
    const third = await agents.start({ dir: agents.dir("batu-tls-") });
    const body = (token: string) => ({ master: master.url.replace("http://", ""), token });
    const refused = await call(`${third.url}/slave/group/join`, { token: third.adminToken, body: body(old) });
    expect(refused).toMatchObject({ status: 502, body: { message: expect.stringMatching(/does not hold this join token/) } });
    const joined = await call(`${third.url}/slave/group/join`, { token: third.adminToken, body: body(fresh) });
    expect(joined.status, JSON.stringify(joined.body)).toBe(200);
    expect((await groupList()).member.map((m: any) => m.node_id).sort()).toEqual([member.nodeId, third.nodeId].sort());
    await until(memberOnMaster, (m) => m.state === "alive" && Date.parse(m.last_seen) > Date.now() - 2000);
    master.joinToken = fresh;
  });
});

const skipReason = await netnsUnavailableReason();
if (skipReason) console.warn(`test/tls.test.ts (LAN part) skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)("tls: from another host on the LAN", () => {
  let lan: Lan;
  let server: NetnsHost;
  let client: NetnsHost;
  let agent: AgentProcess;
  const plain = (path: string) => `http://${server.ip}:10000${path}`;
  const https = (path: string) => `https://${server.ip}:10443${path}`;
  const fromClient = (args: string[]) => curl(args, client.wrap);

  beforeAll(async () => {
    lan = await Lan.create(agents.dir("batu-tls-lan-"));
    server = await lan.addHost(1);
    client = await lan.addHost(2);
    agent = await agents.start({ wrap: server.wrap, host: "0.0.0.0", port: 10000, dir: agents.dir("batu-tls-lan-") });
  }, 60_000);
  afterAll(async () => {
    // The agent first (so its end is expected), then the namespaces and what else runs in them.
    await agents.cleanup();
    await lan?.destroy();
  });

  it("refuses the admin token over plain HTTP, naming the HTTPS URL; serves it over HTTPS to the pinned key", async () => {
    for (const token of [agent.adminToken, "not-the-token-at-all"]) {
      const r = await fromClient([...bearer(token), plain("/common/config")]);
      expect(r.status).toBe(403);
      expect(r.body.message).toBe(`this call is served to other hosts over HTTPS only: use https://${server.ip}:10443 (the agent's certificate: batu tls)`);
    }
    expect(await fromClient(["-k", "--pinnedpubkey", agent.curlPin, ...bearer(agent.adminToken), https("/common/config")])).toMatchObject({
      exit: 0,
      status: 200,
      body: { batu: true },
    });
    expect((await fromClient(["-k", "--pinnedpubkey", agent.curlPin, ...bearer("not-the-token-at-all"), https("/common/config")])).status).toBe(401);
    // The same call from the host itself (the CLI's way) stays on plain HTTP.
    expect((await call(plain("/common/config"), { token: agent.adminToken, socketPath: server.socketPath })).status).toBe(200);
    // The renter API stays on plain HTTP for DBC's clients, and is on HTTPS too.
    for (const url of [plain("/api/v1/mining_nodes"), https("/api/v1/mining_nodes")]) {
      expect(await fromClient(["-k", "-d", "{}", url])).toMatchObject({ status: 400, body: { errcode: -25 } });
    }
  });

  it("refuses the join token as a bearer, a member's heartbeat and a master's forwarded call over plain HTTP; the hello stays open", async () => {
    const join = await fromClient([...bearer(agent.joinToken), "-H", "content-type: application/json", "-d", "{}", plain("/master/group/join")]);
    expect(join.status).toBe(403);
    expect((await fromClient(["-H", "content-type: application/json", "-d", "{}", plain("/master/group/heartbeat")])).status).toBe(403);
    expect((await fromClient(["-H", "content-type: application/json", "-d", "{}", plain("/slave/group/vms")])).status).toBe(403);
    const forwarded = [
      "-H", `x-batu-forwarded-by: ${"a".repeat(64)}`, "-H", "x-batu-renter: 5Renter", "-H", `x-batu-forward-at: ${Date.now()}`,
      "-H", `x-batu-forward-nonce: ${"0".repeat(32)}`, "-H", `x-batu-forward-sig: 0x${"ab".repeat(64)}`,
      "-d", JSON.stringify({ peer_nodes_list: [agent.nodeId], additional: {} }),
    ];
    expect((await fromClient([...forwarded, plain("/api/v1/tasks")])).body).toEqual({
      errcode: -3,
      message: "check authority failed: forwarded call refused: not over TLS",
    });
    // Over TLS it is its signature that is judged (this host has no master).
    expect((await fromClient(["-k", ...forwarded, https("/api/v1/tasks")])).body).toEqual({
      errcode: -3,
      message: "check authority failed: forwarded call refused: this host has no master",
    });
    const hello = await fromClient([plain(`/master/group/hello?challenge=${"c".repeat(32)}`)]);
    expect(hello).toMatchObject({ status: 200, body: { node_id: agent.nodeId, tls_port: 10443, cert_sha256: agent.certSha256 } });
  });
});
