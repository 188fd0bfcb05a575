import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { joinGroup } from "./helpers/group.js";
import { until } from "./helpers/wait.js";
import { parsePrometheusText, sample } from "../src/metrics/testing.js";

// A master that takes one heartbeat a second at most, and a member that would beat every 200 ms:
// the master's answers pace it to about one beat a second (1 member ÷ 1/s, ± 25 %).
const agents = new TestAgents();
let master: AgentProcess;
let member: AgentProcess;

beforeAll(async () => {
  master = await agents.start({ dir: agents.dir("batu-pacing-"), extraArgs: ["--max-heartbeats-per-s", "1"] });
  member = await agents.start({ dir: agents.dir("batu-pacing-"), extraArgs: ["--heartbeat-ms", "200"] });
  await joinGroup(member, master);
});

afterAll(() => agents.cleanup());

/** Heartbeats the master answered with 200 so far (its own request counter). */
async function beatsAnswered(): Promise<number> {
  const res = await fetch(`${master.url}/metrics`, { headers: { authorization: `Bearer ${master.adminToken}` } });
  const text = parsePrometheusText(await res.text());
  return sample(text, "batu_http_requests_total", { method: "POST", route: "/master/group/heartbeat", status: "200" }) ?? 0;
}

describe("a master paces its members' heartbeats (--max-heartbeats-per-s)", () => {
  it("a member beats as often as its master asks, not as its own period would, and stays alive", async () => {
    await until(beatsAnswered, (n) => n >= 2);
    const before = await beatsAnswered();
    await new Promise((r) => setTimeout(r, 5000));
    const beats = (await beatsAnswered()) - before;
    // Unpaced, 5 s of 200 ms beats are 25; paced to 0.75–1.25 s, 4 to 7.
    expect(beats).toBeGreaterThanOrEqual(3);
    expect(beats).toBeLessThanOrEqual(8);
    const list = (await call(`${master.url}/master/group/list`, { token: master.adminToken })).body;
    expect(list.member.find((m: { node_id: string }) => m.node_id === member.nodeId)).toMatchObject({ state: "alive" });
    const mine = (await call(`${member.url}/slave/group/my/master`, { token: member.adminToken })).body;
    expect(mine).toMatchObject({ reachable: true, last_error: null });
  });
});
