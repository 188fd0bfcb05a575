import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { call, runCli, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { deleteVms, joinGroup } from "./helpers/group.js";
import { until } from "./helpers/wait.js";
import { run } from "./helpers/netns.js";
import { DEMO_TASK, DbcClient } from "./helpers/dbc-client.js";
import { followEvents } from "./helpers/events.js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// Short timings so liveness changes happen in seconds: beats every 200 ms, suspect after 1 s, dead after 2.5 s.
const MASTER_FLAGS = ["--suspect-after-ms", "1000", "--dead-after-ms", "2500"];
const MEMBER_FLAGS = ["--heartbeat-ms", "200", "--cpu-overcommit", "4", "--shutdown-timeout", "5"];

const agents = new TestAgents();
let master: AgentProcess;
let member: AgentProcess;
const masterAddress = () => master.url.replace("http://", "");
const groupList = async () => (await call(`${master.url}/master/group/list`, { token: master.adminToken })).body;
const memberOnMaster = async () => (await groupList()).member.find((m: any) => m.node_id === member.nodeId);
const myMaster = async () => (await call(`${member.url}/slave/group/my/master`, { token: member.adminToken })).body;

const alice = () => DbcClient.wallet("//batu-alice");
const RETENTION_S = 6;

beforeAll(async () => {
  await cryptoWaitReady();
  master = await agents.start({ dir: agents.dir("batu-group-"), extraArgs: MASTER_FLAGS });
  // The member keeps an ended renter's VMs 6 s (not 10 days), so that the test sees them deleted.
  const memberDir = agents.dir("batu-group-");
  mkdirSync(join(memberDir, "conf"), { recursive: true });
  writeFileSync(join(memberDir, "conf", "config.json"), JSON.stringify({ nickname: "", batu: true, rental_retention_days: RETENTION_S / 86400 }));
  member = await agents.start({ dir: memberDir, extraArgs: MEMBER_FLAGS });
  await joinGroup(member, master);
});

afterAll(async () => {
  // A failed test may leave VMs on the member.
  await deleteVms(member);
  await agents.cleanup();
});

describe("group: heartbeats and liveness", () => {
  it("a member's heartbeats reach the master: alive, with its capacity; the member sees its master reachable", async () => {
    const m = await until(memberOnMaster, (m) => m?.capacity != null);
    expect(m).toMatchObject({ address: `127.0.0.1:${member.port}`, state: "alive", nickname: "" });
    expect(m.capacity.cpu_threads).toBeGreaterThan(0);
    expect(m.capacity.memory_total_bytes).toBeGreaterThan(0);
    expect(m.capacity.disk_free_bytes).toBeGreaterThan(0);
    expect(m.capacity.vm_count).toBe(0);
    expect(m.capacity.gpu_free).toBeLessThanOrEqual(m.capacity.gpu_total);
    expect(m.capacity.version).toMatch(/\d/);
    const mine = await until(myMaster, (b) => b.reachable === true);
    expect(mine).toMatchObject({ message: "ok", master: masterAddress(), last_error: null });
    expect(Date.parse(mine.last_heartbeat)).toBeGreaterThan(Date.now() - 5000);
  });

  it("a member's beats reuse one TLS connection to the master: no handshake per beat", async () => {
    // Connections toward the master's TLS port, by their local (member) port: the member's beats alone here.
    const connections = async () =>
      (await run(["ss", "-Htn", "state", "established", "( dport = :" + master.tlsPort + " )"])).stdout
        .split("\n")
        .filter(Boolean)
        .map((line) => line.trim().split(/\s+/)[2]);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      // Beats every 200 ms: six looks 300 ms apart span about nine of them.
      for (const c of await connections()) seen.add(c!);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect([...seen]).toHaveLength(1);
  });

  it("refuses heartbeats without a valid signature (401) and from non-members (404), with no token asked", async () => {
    const m = await memberOnMaster();
    const forged = {
      node_id: member.nodeId,
      address: "10.9.9.9:10000",
      nickname: "evil",
      sent_at: Date.now(),
      capacity: m.capacity,
      signature: "0x" + "ab".repeat(64),
    };
    const r = await call(`${master.url}/master/group/heartbeat`, { body: forged });
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/signature/);
    const stranger = await call(`${master.url}/master/group/heartbeat`, { body: { ...forged, node_id: "cd".repeat(32) } });
    expect(stranger.status).toBe(404);
    expect((await memberOnMaster()).address).toBe(`127.0.0.1:${member.port}`);
  });

  it("a killed member turns suspect, then dead; restarted, alive again", async () => {
    await agents.stop(member, "kill");
    const t0 = Date.now();
    await until(memberOnMaster, (m) => m.state === "suspect");
    await until(memberOnMaster, (m) => m.state === "dead");
    expect(Date.now() - t0).toBeGreaterThan(1500);
    // A dead member stays listed until the operator removes it.
    expect((await groupList()).member).toHaveLength(1);
    member = await agents.restart(member);
    await until(memberOnMaster, (m) => m.state === "alive");
  });

  it("a restarted master keeps its members, which come back by themselves; meanwhile the member reports it unreachable", async () => {
    const port = master.port;
    await agents.stop(master);
    const down = await until(myMaster, (b) => b.reachable === false);
    expect(down.last_error).toBeTruthy();
    master = await agents.restart(master, { port });
    expect((await groupList()).member).toEqual([expect.objectContaining({ node_id: member.nodeId })]);
    // The restarted master holds no session key: the member's MAC is refused, it agrees a new key and beats on with it.
    // (What was proven is known from a heartbeat this master took: one since its restart.)
    const back = await until(memberOnMaster, (m) => m.state === "alive" && m.heartbeat_proof !== undefined);
    expect(back.heartbeat_proof).toBe("session key");
    await until(myMaster, (b) => b.reachable === true);
  });
});

describe("group: routing /api/v1 through the master", () => {
  it("mining_nodes with an empty list answers every node of the group", async () => {
    const r = await new DbcClient(master.url, master.nodeId).post("mining_nodes", { peer_nodes_list: [], additional: {} });
    expect(r.body.errcode).toBe(0);
    expect(r.body.message.mining_nodes.map((n: any) => n.node_id).sort()).toEqual([master.nodeId, member.nodeId].sort());
    expect(r.body.message.mining_nodes.find((n: any) => n.node_id === member.nodeId)).toMatchObject({ state: "online" });
  });

  it("mining_nodes for the member's node is answered by the member, through the master", async () => {
    const viaMaster = await new DbcClient(master.url, member.nodeId).call("mining_nodes", {});
    expect(viaMaster.body.errcode).toBe(0);
    const direct = await new DbcClient(member.url, member.nodeId).call("mining_nodes", {});
    // What does not move between two calls (free memory and load do): the same host answered both.
    const fixed = (m: any) => ({ version: m.version, os: m.os, cpu: [m.cpu.type, m.cpu.cores], mem: m.mem.size, images: m.images });
    expect(fixed(viaMaster.body.message)).toEqual(fixed(direct.body.message));
  });

  it("tasks for the member's node: authorized on the master's ledger, answered by the member", async () => {
    const dbc = new DbcClient(master.url, member.nodeId);
    const before = await dbc.call("tasks", DbcClient.signed(alice()));
    expect(before.body).toEqual({ errcode: -3, message: "check authority failed: machine is not be rented" });
    const g = await call(`${master.url}/common/rent/grant`, {
      token: master.adminToken,
      body: { node_id: member.nodeId, wallet: alice().address, until: new Date(Date.now() + 3600_000).toISOString() },
    });
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    const r = await dbc.call("tasks", DbcClient.signed(alice()));
    expect(r).toMatchObject({ status: 200, body: { errcode: 0, message: [] } });
    // The member's node info, through the master, tells the master ledger's state.
    expect((await dbc.call("mining_nodes", {})).body.message.state).toBe("rented");
    const missing = await dbc.call("tasks/no-such-task", DbcClient.signed(alice()));
    expect(missing.body).toEqual({ errcode: -3, message: "task_id not exist" });
    // The member has no ledger of its own: a stranger calling it directly is refused, and the renter
    // is served there by the terms the master replicates with its next heartbeat answer.
    const directly = new DbcClient(member.url, member.nodeId);
    expect((await directly.call("tasks", DbcClient.signed(DbcClient.wallet("//batu-stranger")))).body.errcode).toBe(-3);
    await until(() => directly.call("tasks", DbcClient.signed(alice())), (l) => l.body.errcode === 0);
  });

  it("a VM on the member, driven through the master alone: start, detail, delete (session identity)", async () => {
    const dbc = new DbcClient(master.url, member.nodeId);
    // The session id comes from the master's ledger, for the member's node.
    const s = await dbc.call("mining_nodes/session_id", DbcClient.signed(alice()));
    expect(s.body.errcode).toBe(0);
    const sessionId: string = s.body.message.session_id;
    const session = () => ({ session_id: sessionId, session_id_sign: u8aToHex(alice().sign(sessionId)) });
    // The member's event stream, through the master (authenticated there, relayed from the member).
    const q = new URLSearchParams({ node: member.nodeId, ...session() });
    const stream = await followEvents(`${master.url}/api/v1/events?${q}`);
    const r = await dbc.call("tasks/start", session(), DEMO_TASK);
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    const taskId: string = r.body.message.task_id;
    const running = await until(() => dbc.call(`tasks/${taskId}`, session()), (d) => d.body.message?.status === "running", 30_000);
    await until(async () => stream.events, (es) => es.some((e) => e.task_id === taskId && e.status === "running"));
    await stream.stop();
    // Its forwards are on the member: ssh_ip is the member's address as the master reached it.
    expect(running.body.message.ssh_ip).toBe("127.0.0.1");
    // The VM lives on the member, owned by the renter the master authenticated.
    const onMember = (await call(`${member.url}/common/vm/list`, { token: member.adminToken })).body;
    expect(onMember.map((v: any) => v.id)).toEqual([taskId]);
    // The master's group-wide list has it, placed on the member; the seed's list stays this host's own.
    const groupWide = await call(`${master.url}/common/vm/list?scope=group`, { token: master.adminToken });
    expect(groupWide.status).toBe(200);
    expect(groupWide.body).toEqual([
      expect.objectContaining({ id: taskId, node_id: member.nodeId, node_address: `127.0.0.1:${member.port}`, status: "running" }),
    ]);
    expect((await call(`${master.url}/common/vm/list`, { token: master.adminToken })).body).toEqual([]);
    // A page, and one node's VMs: the same VM; the last page names no next one. Paging is for scope=group only.
    const page = await fetch(`${master.url}/common/vm/list?scope=group&limit=1`, { headers: { authorization: `Bearer ${master.adminToken}` } });
    expect([page.status, page.headers.get("x-batu-next"), ((await page.json()) as any[]).map((v) => v.id)]).toEqual([200, null, [taskId]]);
    const ofMember = await call(`${master.url}/common/vm/list?scope=group&node_id=${member.nodeId}`, { token: master.adminToken });
    expect(ofMember.body.map((v: any) => [v.id, v.node_id])).toEqual([[taskId, member.nodeId]]);
    expect((await call(`${master.url}/common/vm/list?scope=group&node_id=${master.nodeId}`, { token: master.adminToken })).body).toEqual([]);
    const hostPage = await call(`${master.url}/common/vm/list?limit=1`, { token: master.adminToken });
    expect([hostPage.status, hostPage.body.message]).toEqual([400, expect.stringMatching(/^limit: only with scope=group/)]);
    const onlyMaster = await call(`${member.url}/common/vm/list?scope=group`, { token: member.adminToken });
    expect(onlyMaster.status).toBe(409);
    // The member hands its list only to its master's signed call.
    const unsigned = await fetch(`${member.url}/slave/group/vms`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(unsigned.status).toBe(401);
    expect((await dbc.call(`tasks/delete/${taskId}`, session())).body.errcode).toBe(0);
    await until(() => dbc.call("tasks", session()), (l) => l.body.errcode === 0 && l.body.message.length === 0, 30_000);
  });

  it("a rental revoked on the master: the member shuts its renter's VM down, then deletes it after the retention", async () => {
    const dbc = new DbcClient(master.url, member.nodeId);
    const r = await dbc.call("tasks/start", DbcClient.signed(alice()), DEMO_TASK);
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    const taskId: string = r.body.message.task_id;
    await until(() => dbc.call(`tasks/${taskId}`, DbcClient.signed(alice())), (d) => d.body.message?.status === "running", 30_000);
    const rentals = (await call(`${master.url}/common/rent/list?state=active&node_id=${member.nodeId}`, { token: master.adminToken })).body.rentals;
    const revoked = await call(`${master.url}/common/rent/revoke`, { token: master.adminToken, body: { id: rentals[0].id } });
    expect(revoked.status).toBe(200);
    const endedAt: string = revoked.body.rental.revoked_at;
    // The member hears of it with its next heartbeat answer, and shuts the VM down.
    const vmOnMember = async () => (await call(`${member.url}/common/vm/list`, { token: member.adminToken })).body.find((v: any) => v.id === taskId);
    const closed = await until(vmOnMember, (v) => v?.status === "closed", 30_000);
    expect(closed).toMatchObject({ owner: alice().address, rental_ended_at: endedAt });
    const log = async () => (await call(`${member.url}/common/vm/log?vm_id=${taskId}`, { token: member.adminToken })).body.lines.join("\n");
    expect(await log()).toContain(`rental ended at ${endedAt}: the VM is shut down, and deleted at`);
    // The renter is refused on the node now; after the retention the VM is gone, its log says why.
    expect((await dbc.call(`tasks/${taskId}`, DbcClient.signed(alice()))).body.message).toBe("check authority failed: machine is not be rented");
    await until(vmOnMember, (v) => v === undefined, (RETENTION_S + 20) * 1000);
    expect(await log()).toMatch(/rental retention over: deleting the VM\n.*delete\n.*deleted$/);
    // alice rents the member again for the tests that follow.
    const g = await call(`${master.url}/common/rent/grant`, {
      token: master.adminToken,
      body: { node_id: member.nodeId, wallet: alice().address, until: new Date(Date.now() + 3600_000).toISOString() },
    });
    expect(g.status).toBe(200);
  });

  it("a member refuses calls that claim to be forwarded but are not signed by its master", async () => {
    const res = await fetch(`${member.url}/api/v1/tasks`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-batu-forwarded-by": master.nodeId,
        "x-batu-renter": alice().address,
        "x-batu-forward-at": String(Date.now()),
        "x-batu-forward-nonce": "0".repeat(32),
        "x-batu-forward-sig": "0x" + "ab".repeat(64),
      },
      body: JSON.stringify({ peer_nodes_list: [member.nodeId], additional: {} }),
    });
    expect(await res.json()).toEqual({ errcode: -3, message: "check authority failed: forwarded call refused: bad signature" });
  });

  it("a call to a dead member fails within 2 s with -32701 naming the node", async () => {
    await agents.stop(member, "kill");
    const dbc = new DbcClient(master.url, member.nodeId);
    // While merely suspect, the connection is refused at once on loopback.
    let t = Date.now();
    const early = await dbc.call("tasks", DbcClient.signed(alice()));
    expect(Date.now() - t).toBeLessThan(2000);
    expect(early.body.errcode).toBe(-32701);
    await until(memberOnMaster, (m) => m.state === "dead");
    t = Date.now();
    const r = await dbc.call("tasks", DbcClient.signed(alice()));
    expect(Date.now() - t).toBeLessThan(2000);
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe(-32701);
    expect(r.body.message).toContain(member.nodeId);
    expect(r.body.message).toMatch(/dead/);
    // The group-wide list does not wait for it either: it names it as unreachable.
    const list = await fetch(`${master.url}/common/vm/list?scope=group`, { headers: { authorization: `Bearer ${master.adminToken}` } });
    expect(list.status).toBe(200);
    expect(JSON.parse(list.headers.get("x-batu-unreachable") ?? "[]")).toEqual([
      { node_id: member.nodeId, reason: expect.stringMatching(/dead/) },
    ]);
    expect(list.headers.get("x-batu-unreachable-count")).toBe("1");
    member = await agents.restart(member);
    await until(memberOnMaster, (m) => m.state === "alive");
  });
});

describe("group: removing a member", () => {
  it("`batu group remove <node_id>` forgets it; its heartbeats are then refused and it reports the master unreachable", async () => {
    const unknown = await runCli(["group", "remove", "10.1.1.1:10000", "--conf-dir", master.confDir, "--port", String(master.port)]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no such member/);
    const r = await runCli(["group", "remove", member.nodeId, "--conf-dir", master.confDir, "--port", String(master.port), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ message: "ok", address: `127.0.0.1:${member.port}`, node_id: member.nodeId });
    expect((await groupList()).member).toEqual([]);
    const mine = await until(myMaster, (b) => b.reachable === false);
    expect(mine.last_error).toMatch(/not a member/);
    // Nothing routes to it any more.
    const call2 = await new DbcClient(master.url, member.nodeId).call("tasks", DbcClient.signed(alice()));
    expect(call2.body.errcode).toBe(-32701);
    expect(call2.body.message).toMatch(/not served here/);
  });
});
