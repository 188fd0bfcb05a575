// `batu backup` and `batu restore` against a real agent: a backup taken while it runs, a restore
// refused while it runs, and after a restore the same node (its key) with the same rental ledger.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { testWallet } from "../src/auth/testing.js";
import { call, runCli, TestAgents } from "./helpers/agent-process.js";

describe("backup and restore of a host's state", () => {
  const agents = new TestAgents();
  afterAll(() => agents.cleanup(), 60_000);

  it("backs up a running agent, refuses a restore under it, and restores its node and ledger once it is stopped", async () => {
    let agent = await agents.start();
    const dirs = ["--conf-dir", agent.confDir, "--data-dir", agent.dataDir, "--port", String(agent.port)];
    await cryptoWaitReady();
    const wallet = testWallet("//batu-backup-alice").address;
    const granted = await runCli(["rent", "grant", agent.nodeId, "--wallet", wallet, "--until", "30d", ...dirs]);
    expect(granted.code, granted.stderr).toBe(0);

    const folder = join(agents.dir("batu-backup-"), "b1");
    const made = await runCli(["backup", folder, ...dirs, "--json"]);
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ message: "ok", confFiles: expect.arrayContaining(["admin.token", "node.key"]) });

    const underIt = await runCli(["restore", folder, ...dirs]);
    expect([underIt.code, underIt.stderr]).toEqual([1, expect.stringContaining(`an agent answers on port ${agent.port}: stop it first`)]);

    // The host loses its state: store and conf. The backup brings it back, the same node.
    await agents.stop(agent);
    rmSync(agent.dataDir, { recursive: true, force: true });
    rmSync(agent.confDir, { recursive: true, force: true });
    const restored = await runCli(["restore", folder, ...dirs]);
    expect(restored.code, restored.stderr).toBe(0);
    const nodeId = agent.nodeId;
    agent = await agents.restart(agent);
    expect(agent.nodeId).toBe(nodeId);
    const list = await call(`${agent.url}/common/rent/list`, { token: agent.adminToken });
    expect(list.body.rentals).toEqual([expect.objectContaining({ node_id: nodeId, wallet, state: "active" })]);
  }, 90_000);
});
