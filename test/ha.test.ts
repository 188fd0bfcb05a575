/**
 * Issue 17: a group with three masters sharing etcd (a three-member cluster in its own namespace)
 * and two members, every host in a network namespace. Renters and members use the group's service
 * address only. The leading master is SIGKILLed during a stream of renter calls and a join: another
 * master takes the lead and the address, and no rental, session, nonce, member or task is lost or
 * duplicated. The failover time is printed (measured, not asserted).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { Lan, netnsUnavailableReason, run, type NetnsHost } from "./helpers/netns.js";
import { TestAgents, call, removeDir, runCli, tempDir, type AgentProcess } from "./helpers/agent-process.js";
import { DbcClient, DEMO_TASK } from "./helpers/dbc-client.js";
import { EtcdCluster } from "./helpers/etcd.js";
import { until } from "./helpers/wait.js";
import { processAlive, qemuPid } from "./helpers/vm.js";
import { parsePrometheusText, sample } from "../src/metrics/testing.js";

const skipReason = (await netnsUnavailableReason()) ?? (await run(["etcd", "--version"]).then(() => null, () => "etcd is not installed (etcd-server)"));
if (skipReason) console.warn(`test/ha.test.ts skipped: ${skipReason}`);

const AGENT_PORT = 10000;
/** The renter's own task id (DBC's are 20–22 characters): a retried create names the same task. */
const HA_TASK_ID = "haTask1xyzABCDEFGHJKLM";
const MEMBER_FLAGS = ["--heartbeat-ms", "300", "--cpu-overcommit", "4", "--shutdown-timeout", "5"];
const MASTER_FLAGS = ["--heartbeat-ms", "300", "--suspect-after-ms", "3000", "--dead-after-ms", "8000"];

interface Host {
  net: NetnsHost;
  dir: string;
  agent: AgentProcess;
}

describe.skipIf(skipReason !== null)("ha: three masters on etcd, two members", () => {
  let root: string;
  const agents = new TestAgents();
  let lan: Lan;
  let etcd: EtcdCluster;
  let masters: Host[] = [];
  let m1: Host, m2: Host;
  let renterNet: NetnsHost;
  let serviceIp: string;
  /** A unix socket reaching the service address's port 10000 from the renter's namespace. */
  let serviceSocket: string;
  const alice = () => DbcClient.wallet("//batu-ha-alice");
  let taskId: string;

  const api = (h: Host, path: string, opts: Parameters<typeof call>[1] = {}) =>
    call(`http://127.0.0.1:${AGENT_PORT}${path}`, { token: h.agent.adminToken, socketPath: h.net.socketPath, ...opts });
  /** A renter's client of the group: every call to the service address. */
  const renter = (nodeId: string) => new DbcClient(`http://${serviceIp}:${AGENT_PORT}`, nodeId, { socketPath: serviceSocket });
  /** Sockets reaching each master's own address's port 10000 from the renter's namespace. */
  const ownSockets = new Map<Host, string>();
  /** A renter's client of one master, at its own address (every master answers there too). */
  const renterOf = (h: Host, nodeId: string, timeoutMs?: number) =>
    new DbcClient(`http://${h.net.ip}:${AGENT_PORT}`, nodeId, { socketPath: ownSockets.get(h)!, ...(timeoutMs ? { timeoutMs } : {}) });
  /** How many renter calls a master forwarded to members and got an answer to (its /metrics). */
  const forwardsAnswered = async (h: Host) => {
    const text = (await api(h, "/metrics")).body as string;
    return sample(parsePrometheusText(text), "batu_forward_duration_seconds_count", { outcome: "replied" }) ?? 0;
  };
  const holdsAddress = async (h: Host) => (await lan.exec(h.net, ["ip", "-4", "addr", "show", "dev", "eth0"])).stdout.includes(`${serviceIp}/`);
  const leader = async () => {
    for (const h of masters) if (agents.running().includes(h.agent) && (await holdsAddress(h))) return h;
    return undefined;
  };
  const joinGroup = (h: Host) =>
    runCli(["group", "join", `${serviceIp}:${AGENT_PORT}`, "--token", masters[0]!.agent.joinToken, "--json", "--conf-dir", `${h.dir}/conf`, "--port", String(AGENT_PORT)], {}, 30_000, h.net.wrap);
  const members = async (h: Host) => (await api(h, "/master/group/list")).body.member as any[];

  function writeMasterConfig(dir: string): void {
    mkdirSync(join(dir, "conf"), { recursive: true });
    const groupHa = { etcd_endpoints: etcd.endpoints, service_address: `${serviceIp}/24`, service_interface: "eth0", lease_ttl_s: 2 };
    writeFileSync(join(dir, "conf", "config.json"), JSON.stringify({ nickname: "ha-master", batu: true, group_ha: groupHa }));
    writeFileSync(join(dir, "conf", "host_config.json"), JSON.stringify({ host_type: "master", group_name: "ha" }));
  }

  beforeAll(async () => {
    await cryptoWaitReady();
    root = tempDir("batu-ha-");
    lan = await Lan.create(root);
    serviceIp = `${lan.subnet}.100`;
    const etcdNet = await lan.addHost(9);
    etcd = await EtcdCluster.start({ ip: etcdNet.ip, dir: join(root, "etcd"), wrap: etcdNet.wrap });
    const hosts: Host[] = [];
    for (const i of [1, 2, 3, 4, 5]) {
      const dir = join(root, `h${i}`);
      mkdirSync(dir);
      hosts.push({ net: await lan.addHost(i), dir } as Host);
    }
    renterNet = await lan.addHost(7);
    serviceSocket = join(root, "service.sock");
    await lan.forward(renterNet.wrap, serviceSocket, serviceIp, AGENT_PORT);
    masters = hosts.slice(0, 3);
    for (const h of masters) {
      ownSockets.set(h, join(root, `renter-to-${h.net.name}.sock`));
      await lan.forward(renterNet.wrap, ownSockets.get(h)!, h.net.ip, AGENT_PORT);
    }
    [m1, m2] = hosts.slice(3) as [Host, Host];
    for (const h of masters) writeMasterConfig(h.dir);
    const start = async (h: Host, flags: string[]) => {
      h.agent = await agents.start({ wrap: h.net.wrap, host: "0.0.0.0", port: AGENT_PORT, dir: h.dir, extraArgs: flags });
    };
    // The first master gives the group its identity; the others take it.
    await start(masters[0]!, MASTER_FLAGS);
    await Promise.all([...masters.slice(1).map((h) => start(h, MASTER_FLAGS)), start(m1, MEMBER_FLAGS), start(m2, MEMBER_FLAGS)]);
  }, 180_000);

  let logsShown = false;
  afterEach(({ task }) => {
    if (task.result?.state !== "fail" || logsShown) return;
    logsShown = true;
    for (const h of [...masters, m1, m2]) {
      if (h?.agent) console.error(`--- ${h.net.name} (${h.net.ip}) agent log, last lines:\n${h.agent.logs().split("\n").slice(-30).join("\n")}`);
    }
    console.error(`--- etcd:\n${etcd?.logs().slice(-2000)}`);
  });

  afterAll(async () => {
    if (taskId && m1?.agent && agents.running().includes(m1.agent)) {
      await api(m1, "/common/vm/control", { body: { vm_id: taskId, action: "delete" } }).catch(() => undefined);
      const pid = qemuPid(m1.agent, taskId);
      if (pid && processAlive(pid)) process.kill(pid, "SIGKILL");
    }
    await agents.cleanup();
    await etcd?.stop();
    try {
      await lan?.destroy();
    } finally {
      if (root) removeDir(root);
    }
  }, 120_000);

  it("the masters present one identity; one leads and holds the service address", async () => {
    const ids = new Set(masters.map((h) => h.agent.nodeId));
    expect(ids.size).toBe(1);
    expect(new Set(masters.map((h) => h.agent.certSha256)).size).toBe(1);
    const first = await until(leader, (h) => h !== undefined, 20_000, "a leader holding the service address");
    const holders = await Promise.all(masters.map(holdsAddress));
    expect(holders.filter(Boolean)).toHaveLength(1);
    expect(first).toBe(masters[0]);
  });

  it("members join through the service address; every master lists them", async () => {
    for (const m of [m1, m2]) {
      const r = await joinGroup(m);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const h of masters) {
      await until(() => members(h), (list) => [m1, m2].every((m) => list.some((x) => x.node_id === m.agent.nodeId)), 10_000, `members on ${h.net.name}`);
    }
  });

  it("a grant made through a follower, a session and a task through the service address", async () => {
    const follower = masters[1]!;
    const grant = await api(follower, "/common/rent/grant", {
      body: { node_id: m1.agent.nodeId, wallet: alice().address, until: new Date(Date.now() + 3600_000).toISOString() },
    });
    expect(grant.status, JSON.stringify(grant.body)).toBe(200);
    const client = renter(m1.agent.nodeId);
    const session = await client.call("mining_nodes/session_id", DbcClient.signed(alice()));
    expect(session.body.errcode, session.text).toBe(0);
    const started = await client.call("tasks/start", DbcClient.signed(alice()), { ...DEMO_TASK, task_id: HA_TASK_ID });
    expect(started.body.errcode, started.text).toBe(0);
    taskId = started.body.message.task_id;
    // Every master's copy has the rental and the session as soon as etcd has them.
    for (const h of masters) {
      await until(async () => (await api(h, "/common/rent/list")).body, (b) => JSON.stringify(b).includes(alice().address), 5_000, `rental on ${h.net.name}`);
    }
  });

  it("a follower answers a renter call routed to a member itself; the call's nonce is refused again through every master", async () => {
    const lead = (await leader())!;
    const [follower, other] = masters.filter((h) => h !== lead) as [Host, Host];
    const session = (await renter(m1.agent.nodeId).call("mining_nodes/session_id", DbcClient.signed(alice()))).body.message.session_id as string;
    const identity = DbcClient.signed(alice());
    const forwardsBefore = await forwardsAnswered(follower);
    // While the leader is stopped, a call the follower passed on would wait for it: these must not.
    // (Stopped for less than the lease's 2 s: the leader keeps the lead.)
    const atFollower = renterOf(follower, m1.agent.nodeId, 1_500);
    lead.agent.child.kill("SIGSTOP");
    let signed, bySession;
    try {
      [signed, bySession] = await Promise.all([
        atFollower.call("tasks", identity),
        atFollower.call("tasks", { session_id: session, session_id_sign: u8aToHex(alice().sign(session)) }),
      ]);
    } finally {
      lead.agent.child.kill("SIGCONT");
    }
    for (const r of [signed, bySession]) {
      expect(r.body.errcode, r.text).toBe(0);
      expect(r.body.message.map((t: any) => t.task_id)).toContain(taskId);
    }
    expect(await forwardsAnswered(follower)).toBe(forwardsBefore + 2);

    // A replay to the same follower: refused there, from its own store, before any forward.
    const again = await renterOf(follower, m1.agent.nodeId).call("tasks", identity);
    expect(again.text).toContain("nonce is already exist");
    expect(await forwardsAnswered(follower)).toBe(forwardsBefore + 2);
    // Through the other follower and through the leader: neither holds the nonce (the follower's rows
    // never go to etcd), so each forwards the replay, and the member refuses it.
    for (const [name, client, master] of [["the other follower", renterOf(other, m1.agent.nodeId), other], ["the leader", renter(m1.agent.nodeId), lead]] as const) {
      const forwarded = await forwardsAnswered(master);
      const replay = await client.call("tasks", identity);
      expect(replay.text, name).toContain("nonce is already exist");
      expect(await forwardsAnswered(master), name).toBe(forwarded + 1);
    }
    // The leader burnt it too and ships it to etcd: the follower's copy takes that row over its own.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(follower.agent.logs()).not.toContain("the watch of the group's tables failed");
    expect((await renterOf(follower, m1.agent.nodeId).call("tasks", identity)).text).toContain("nonce is already exist");
    // One leader still, the same one (the next test kills it).
    expect((await Promise.all(masters.map(holdsAddress))).filter(Boolean)).toHaveLength(1);
    expect(await leader()).toBe(lead);
  });

  it("the leader SIGKILLed during a stream of renter calls and a join: another leads, nothing is lost or duplicated", async () => {
    const old = (await leader())!;
    const client = renter(m1.agent.nodeId);
    // A call the master answers itself, burning a nonce and writing nothing else: its nonce reaches
    // etcd with the leader's next background batch (within 200 ms), not before its reply.
    const sessionCall = DbcClient.signed(alice());
    const session = (await client.call("mining_nodes/session_id", sessionCall)).body.message.session_id as string;
    await new Promise((resolve) => setTimeout(resolve, 600));
    const acknowledged: { nonce: string; sign: string; wallet: string }[] = [];
    const failures: string[] = [];
    let streaming = true;
    const stream = (async () => {
      while (streaming) {
        const identity = DbcClient.signed(alice());
        const r = await client.call("tasks", identity).catch((e: Error) => ({ status: 0, body: undefined, text: e.message }));
        if (r.status === 200 && r.body?.errcode === 0) acknowledged.push(identity);
        else failures.push(`${r.status} ${r.text.slice(0, 120)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    await until(() => acknowledged.length, (n) => n >= 3, 10_000, "renter calls answered before the kill");
    const killedAt = Date.now();
    const beforeKill = acknowledged.length;
    await agents.stop(old.agent, "kill");
    // A member re-joins during the failover (its join is retried until a master answers).
    const rejoin = until(() => joinGroup(m2), (r) => r.code === 0, 30_000, "m2's join during the failover", 500);
    await until(() => acknowledged.length, (n) => n > beforeKill, 30_000, "a renter call answered after the kill");
    const failoverMs = Date.now() - killedAt;
    streaming = false;
    await stream;
    await rejoin;
    const next = (await leader())!;
    expect(next).toBeDefined();
    expect(next).not.toBe(old);
    console.log(`ha failover: first renter call answered ${failoverMs} ms after the leader's SIGKILL (lease TTL 2 s); ${failures.length} calls failed meanwhile`);
    // Calls that failed did so without an answer or with not_leader: none was half done.
    for (const f of failures) expect(f).toMatch(/^(0 |503 |502 )/);

    // Nonces: every call acknowledged, before the kill or after, is refused when replayed.
    for (const identity of [acknowledged[0]!, acknowledged[beforeKill - 1]!, acknowledged[acknowledged.length - 1]!]) {
      const replay = await client.call("tasks", identity);
      expect(replay.body.errcode, replay.text).not.toBe(0);
    }
    // The nonce of the call the old leader answered itself is refused by the new one.
    const sessionReplay = await client.call("mining_nodes/session_id", sessionCall);
    expect(sessionReplay.text).toContain("nonce is already exist");
    // The session: the same id, still valid.
    const again = await client.call("mining_nodes/session_id", DbcClient.signed(alice()));
    expect(again.body.message.session_id).toBe(session);
    // The task: once, and a retried create of the same task_id creates nothing.
    const tasks = await client.call("tasks", DbcClient.signed(alice()));
    expect(tasks.body.message.filter((t: any) => t.task_id === taskId)).toHaveLength(1);
    const retried = await client.call("tasks/start", DbcClient.signed(alice()), { ...DEMO_TASK, task_id: HA_TASK_ID });
    expect(retried.text).toContain("task id already existed");
    // The rental: one, as granted.
    const rentals = (await api(next, "/common/rent/list")).body.rentals as any[];
    expect(rentals.filter((r) => r.renter === alice().address && r.node_id === m1.agent.nodeId)).toHaveLength(1);
    // Members: each once, both alive to the new leader.
    await until(() => members(next), (list) => [m1, m2].every((m) => list.filter((x) => x.node_id === m.agent.nodeId).length === 1 && list.find((x) => x.node_id === m.agent.nodeId)?.state === "alive"), 15_000, "members alive at the new leader");
  });

  it("the killed master restarts as a follower: it gives up the stale address and copies the group", async () => {
    const old = masters.find((h) => !agents.running().includes(h.agent))!;
    old.agent = await agents.start({ wrap: old.net.wrap, host: "0.0.0.0", port: AGENT_PORT, dir: old.dir, extraArgs: MASTER_FLAGS });
    expect(await holdsAddress(old)).toBe(false);
    await until(() => members(old), (list) => [m1, m2].every((m) => list.some((x) => x.node_id === m.agent.nodeId)), 10_000, "members on the restarted master");
    const rentals = JSON.stringify((await api(old, "/common/rent/list")).body);
    expect(rentals).toContain(alice().address);
  });
});
