/**
 * A member serves renter calls addressed to it directly while its master is down (issue 17): its
 * renter, with its own signature, checked against the terms the master replicated to the member;
 * across the member's own restart too. One guest, made through the master before it dies.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { call, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { deleteVms, joinGroup } from "./helpers/group.js";
import { until } from "./helpers/wait.js";
import { DEMO_TASK, DbcClient } from "./helpers/dbc-client.js";

const MASTER_FLAGS = ["--suspect-after-ms", "1000", "--dead-after-ms", "2500"];
const MEMBER_FLAGS = ["--heartbeat-ms", "200", "--cpu-overcommit", "4", "--shutdown-timeout", "5"];

const agents = new TestAgents();
let master: AgentProcess;
let member: AgentProcess;
const alice = () => DbcClient.wallet("//batu-direct-alice");
const stranger = () => DbcClient.wallet("//batu-direct-stranger");
const myMaster = async () => (await call(`${member.url}/slave/group/my/master`, { token: member.adminToken })).body;
/** The renter's calls straight to the member, never through the master. */
const direct = () => new DbcClient(member.url, member.nodeId);

beforeAll(async () => {
  await cryptoWaitReady();
  master = await agents.start({ dir: agents.dir("batu-direct-"), extraArgs: MASTER_FLAGS });
  member = await agents.start({ dir: agents.dir("batu-direct-"), extraArgs: MEMBER_FLAGS });
  await joinGroup(member, master);
});

afterAll(async () => {
  await deleteVms(member);
  await agents.cleanup();
});

describe("a member while no master is reachable", () => {
  let taskId: string;
  let sessionId: string;

  it("the renter rents the member through the master (1 vCPU at most) and makes a task there", async () => {
    const g = await call(`${master.url}/common/rent/grant`, {
      token: master.adminToken,
      body: { node_id: member.nodeId, wallet: alice().address, until: new Date(Date.now() + 3600_000).toISOString(), cpu_cores: 1 },
    });
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    const viaMaster = new DbcClient(master.url, member.nodeId);
    sessionId = (await viaMaster.call("mining_nodes/session_id", DbcClient.signed(alice()))).body.message.session_id;
    const r = await viaMaster.call("tasks/start", DbcClient.signed(alice()), DEMO_TASK);
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    taskId = r.body.message.task_id;
    await until(() => viaMaster.call(`tasks/${taskId}`, DbcClient.signed(alice())), (d) => d.body.message?.status === "running", 30_000, "task running");
    // The terms (with the grant's cap) reach the member with a heartbeat answer.
    await until(() => direct().call("tasks", DbcClient.signed(alice())), (l) => l.body.errcode === 0, 10_000, "terms on the member");
  });

  it("the master is killed: the renter's own signed calls to the member still serve it", async () => {
    await agents.stop(master, "kill");
    await until(myMaster, (b) => b.reachable === false, 10_000, "master unreachable");
    const list = await direct().call("tasks", DbcClient.signed(alice()));
    expect(list.body.errcode, JSON.stringify(list.body)).toBe(0);
    expect(list.body.message.map((t: any) => t.task_id)).toEqual([taskId]);
    const detail = await direct().call(`tasks/${taskId}`, DbcClient.signed(alice()));
    expect(detail.body).toMatchObject({ errcode: 0, message: { task_id: taskId, status: "running" } });
    // Stop and start again, by the renter alone.
    expect((await direct().call(`tasks/stop/${taskId}`, DbcClient.signed(alice()))).body.errcode).toBe(0);
    await until(() => direct().call(`tasks/${taskId}`, DbcClient.signed(alice())), (d) => d.body.message?.status === "closed", 20_000, "task closed");
    expect((await direct().call(`tasks/start/${taskId}`, DbcClient.signed(alice()))).body.errcode).toBe(0);
    await until(() => direct().call(`tasks/${taskId}`, DbcClient.signed(alice())), (d) => d.body.message?.status === "running", 20_000, "task running again");
  });

  it("refuses a stranger, a replayed nonce, a session id (the master keeps them) and what the grant does not give", async () => {
    expect((await direct().call("tasks", DbcClient.signed(stranger()))).body).toEqual({ errcode: -3, message: "check authority failed: wallet not rented" });
    const signed = DbcClient.signed(alice());
    expect((await direct().call("tasks", signed)).body.errcode).toBe(0);
    expect((await direct().call("tasks", signed)).body).toEqual({ errcode: -3, message: "check authority failed: nonce check failed: nonce is already exist" });
    const session = { session_id: sessionId, session_id_sign: u8aToHex(alice().sign(sessionId)) };
    expect((await direct().call("tasks", session)).body).toEqual({ errcode: -3, message: "check authority failed: session_id is invalid" });
    // The grant's cap came with the terms: a second task of 1 vCPU does not fit (refused before anything is made).
    const more = await direct().call("tasks/start", DbcClient.signed(alice()), DEMO_TASK);
    expect(more.body.errcode).toBe(1);
    expect(more.body.message).toMatch(/^allocate cpu failed: your rental of this node gives 1 vCPUs, 1 held by your other tasks/);
  });

  it("a call for another node is refused, naming the master (a member forwards nothing)", async () => {
    const r = await new DbcClient(member.url, master.nodeId).call("tasks", DbcClient.signed(alice()));
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe(-32701);
    expect(r.body.message).toContain(`node ${master.nodeId} is not served here`);
    expect(r.body.message).toContain(`member of the group of master ${master.url.replace("http://", "")}`);
  });

  it("restarted with its master still down, the member serves its renter by the terms it kept", async () => {
    await agents.stop(member);
    member = await agents.restart(member);
    const list = await direct().call("tasks", DbcClient.signed(alice()));
    expect(list.body.errcode, JSON.stringify(list.body)).toBe(0);
    expect(list.body.message.map((t: any) => t.task_id)).toEqual([taskId]);
    await until(() => direct().call(`tasks/${taskId}`, DbcClient.signed(alice())), (d) => d.body.message?.status === "running", 20_000, "task running after restart");
    expect((await direct().call("tasks", DbcClient.signed(stranger()))).body.message).toBe("check authority failed: wallet not rented");
    expect((await myMaster()).reachable).toBe(false);
  });
});
