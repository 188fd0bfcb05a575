/**
 * A token rotated on one master of an HA group reaches every master while they run (docs/ha.md): two
 * real master agents sharing one etcd (a single member on loopback), `batu token rotate` on either;
 * the other accepts the new token and refuses the old at once, its file replaced. And SharedTokens
 * alone: two masters rotating at once end on the same token, etcd's last.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { EtcdCluster } from "./helpers/etcd.js";
import { call, removeDir, runCli, tempDir, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { run } from "./helpers/netns.js";
import { until } from "./helpers/wait.js";
import { SharedTokens } from "../src/group/ha/shared-identity.js";
import { HostTokens, type TokenKind } from "../src/auth/tokens.js";
import { loadIdentity } from "../src/auth/identity.js";
import { createLogger } from "../src/lib/logger.js";

const skipReason = await run(["etcd", "--version"]).then(() => null, () => "etcd is not installed (etcd-server)");
if (skipReason) console.warn(`test/ha-tokens.test.ts skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)("ha: a token rotated on one master reaches the others", () => {
  let root: string;
  let cluster: EtcdCluster;
  const agents = new TestAgents();
  let a: AgentProcess;
  let b: AgentProcess;

  const tokenFile = (m: AgentProcess, kind: TokenKind) => readFileSync(join(m.confDir, `${kind}.token`), "utf8").trim();
  /** The status of an admin call (answered by that master itself: a GET) with `token`. */
  const adminStatus = async (m: AgentProcess, token: string) => (await call(`${m.url}/common/config`, { token })).status;
  const metricsStatus = async (m: AgentProcess, token: string) => (await fetch(`${m.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status;
  const rotate = (m: AgentProcess, kind: TokenKind) => runCli(["token", "rotate", kind, "--json", "--conf-dir", m.confDir, "--port", String(m.port)]);

  function masterDir(name: string): string {
    const dir = join(root, name);
    mkdirSync(join(dir, "conf"), { recursive: true });
    const groupHa = { etcd_endpoints: cluster.endpoints, lease_ttl_s: 2 };
    writeFileSync(join(dir, "conf", "config.json"), JSON.stringify({ nickname: name, batu: true, group_ha: groupHa }));
    writeFileSync(join(dir, "conf", "host_config.json"), JSON.stringify({ host_type: "master", group_name: "tokens" }));
    return dir;
  }

  beforeAll(async () => {
    root = tempDir("batu-ha-tokens-");
    cluster = await EtcdCluster.start({ ip: "127.0.0.1", dir: join(root, "etcd"), size: 1 });
    // The first master gives the group its identity; the second takes it.
    a = await agents.start({ dir: masterDir("a") });
    b = await agents.start({ dir: masterDir("b") });
  }, 120_000);

  afterAll(async () => {
    await agents.cleanup();
    await cluster?.stop();
    if (root) removeDir(root);
  });

  it("both masters start with the group's tokens", async () => {
    expect(b.adminToken).toBe(a.adminToken);
    expect(tokenFile(b, "metrics")).toBe(tokenFile(a, "metrics"));
    expect(await adminStatus(b, a.adminToken)).toBe(200);
  });

  it("the admin token rotated on one master: the other takes the new one and refuses the old", async () => {
    const old = a.adminToken;
    const r = await rotate(a, "admin");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ message: "ok", token: "admin" });
    const fresh = tokenFile(a, "admin");
    expect(fresh).not.toBe(old);
    await until(() => tokenFile(b, "admin"), (t) => t === fresh, 10_000, "b's admin.token replaced");
    expect([await adminStatus(b, fresh), await adminStatus(b, old)]).toEqual([200, 401]);
    expect([await adminStatus(a, fresh), await adminStatus(a, old)]).toEqual([200, 401]);
    expect(b.logs()).toMatch(/"group_ha: the admin token was rotated by a master; in force here now"/);
    expect(b.logs()).not.toContain(fresh);
  });

  it("the metrics token rotated on the other master reaches the first", async () => {
    const old = tokenFile(b, "metrics");
    const r = await rotate(b, "metrics");
    expect(r.code, r.stderr).toBe(0);
    const fresh = tokenFile(b, "metrics");
    await until(() => tokenFile(a, "metrics"), (t) => t === fresh, 10_000, "a's metrics.token replaced");
    expect([await metricsStatus(a, fresh), await metricsStatus(a, old)]).toEqual([200, 401]);
  });

  it("a master that was down takes the token rotated meanwhile; offline, a group's master refuses to rotate", async () => {
    await agents.stop(b);
    const offline = await runCli(["token", "rotate", "join", "--conf-dir", b.confDir, "--port", String(b.port)]);
    expect([offline.code, offline.stderr]).toEqual([1, expect.stringContaining("rotate with its agent running")]);
    const r = await rotate(a, "join");
    expect(r.code, r.stderr).toBe(0);
    const fresh = tokenFile(a, "join");
    b = await agents.restart(b);
    expect(b.joinToken).toBe(fresh);
    expect(b.adminToken).toBe(tokenFile(a, "admin"));
  });
});

describe.skipIf(skipReason !== null)("ha: SharedTokens on one etcd", () => {
  let root: string;
  let cluster: EtcdCluster;
  const clients: Etcd3[] = [];
  const shared: SharedTokens[] = [];
  const holders: HostTokens[] = [];

  beforeAll(async () => {
    root = tempDir("batu-shared-tokens-");
    cluster = await EtcdCluster.start({ ip: "127.0.0.1", dir: join(root, "etcd"), size: 1 });
    for (const name of ["one", "two"]) {
      const confDir = join(root, name);
      mkdirSync(confDir);
      const id = await loadIdentity(confDir);
      const etcd = new Etcd3({ hosts: cluster.endpoints });
      const tokens = new HostTokens(confDir, { admin: id.adminToken, join: id.joinToken, metrics: id.metricsToken });
      const s = new SharedTokens(etcd, "/batu/t/identity/", tokens, createLogger({ level: "silent" }));
      await s.follow();
      clients.push(etcd);
      holders.push(tokens);
      shared.push(s);
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of shared) await s.close();
    for (const c of clients) c.close();
    await cluster?.stop();
    if (root) removeDir(root);
  });

  it("rotations on both at once: both end on etcd's last, in memory and on disk", async () => {
    await Promise.all(Array.from({ length: 10 }, (_, i) => shared[i % 2]!.rotate("admin")));
    const last = (await clients[0]!.get("/batu/t/identity/admin.token").string())!.trim();
    for (const [i, tokens] of holders.entries()) {
      await until(() => tokens.admin(), (t) => t === last, 5_000, `holder ${i}'s admin token`);
      expect(readFileSync(tokens.file("admin"), "utf8")).toBe(`${last}\n`);
    }
  });

  it("a token put in etcd while a master was not following is taken when it follows", async () => {
    await shared[1]!.close();
    await clients[0]!.put("/batu/t/identity/join.token").value("changed-while-away\n");
    const again = new SharedTokens(clients[1]!, "/batu/t/identity/", holders[1]!, createLogger({ level: "silent" }));
    shared[1] = again;
    await again.follow();
    expect(holders[1]!.join()).toBe("changed-while-away");
  });
});
