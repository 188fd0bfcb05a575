// A host's maintenance through `batu host` against a real agent: cordoned, it starts no VM and says
// why to the operator (exit 1) and to renters (the node's info); uncordoned, it starts them again.
import { afterAll, describe, expect, it } from "vitest";
import { DbcClient } from "./helpers/dbc-client.js";
import { runCli, TestAgents } from "./helpers/agent-process.js";

describe("host maintenance through batu host", () => {
  const agents = new TestAgents();
  afterAll(() => agents.cleanup(), 60_000);

  it("cordon refuses a new VM and tells renters; status shows it; uncordon lifts it, and it held across a restart", async () => {
    let agent = await agents.start();
    const cli = (args: string[]) => runCli([...args, "--conf-dir", agent.confDir, "--data-dir", agent.dataDir, "--port", String(agent.port)]);
    const cordoned = await cli(["host", "cordon", "--reason", "RAM upgrade until 18:00", "-o", "json"]);
    expect(cordoned.code, cordoned.stderr).toBe(0);
    expect(JSON.parse(cordoned.stdout)).toMatchObject({ cordoned: true, reason: "RAM upgrade until 18:00", drained: false });

    const refused = await cli(["vm", "create", "--name", "m-1", "--memory", "256M", "--no-wait"]);
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining("node is under maintenance since")]);
    const nodes = await new DbcClient(agent.url, agent.nodeId).post("mining_nodes", { peer_nodes_list: [], additional: {} });
    expect(nodes.body.message.mining_nodes[0]).toMatchObject({ node_id: agent.nodeId, maintenance: { reason: "RAM upgrade until 18:00", running_tasks_shut_down: false } });

    await agents.stop(agent);
    agent = await agents.restart(agent);
    expect((await cli(["host", "status"])).stdout).toMatch(/^cordoned since .*: RAM upgrade until 18:00/);
    expect((await cli(["host", "uncordon"])).code).toBe(0);
    expect((await cli(["host", "status"])).stdout).toMatch(/in service/);
    const info = await new DbcClient(agent.url, agent.nodeId).post("mining_nodes", { peer_nodes_list: [], additional: {} });
    expect(info.body.message.mining_nodes[0].maintenance).toBeUndefined();
  }, 60_000);
});
