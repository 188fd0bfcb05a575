import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolve } from "node:path";
import { call, runCli, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { joinGroup } from "./helpers/group.js";
import { until } from "./helpers/wait.js";
import { seedTasks } from "../bench/lib/api-store.js";
import { HostApiError, HostClient, type GroupVmPage } from "../src/sdk/index.js";
import type { VmItem } from "../src/api/host-vm.js";

/*
 * The group-wide VM list page by page, through the SDK and `batu vm list --group`, against a real
 * master and a real member. Their VMs are closed records written into each stopped agent's store
 * (as bench:api does): nothing boots, and a list of 5 + 4 VMs spans pages of 2, 3 or 4.
 */
const agents = new TestAgents();
let master: AgentProcess;
let member: AgentProcess;
let sdk: HostClient;
let whole: VmItem[];
const MASTER_VMS = 5;
const MEMBER_VMS = 4;
const BASE_IMAGE = resolve(import.meta.dirname, "../build/images/batu-demo.qcow2");

const cli = (args: string[]) => runCli([...args, "--conf-dir", master.confDir, "--port", String(master.port)]);
const ids = (vms: VmItem[]) => vms.map((v) => `${v.node_id}/${v.id}`);

/** Starts an agent, stops it (its store made), writes `count` closed VMs into the store, and starts it again. */
async function agentWithVms(prefix: string, count: number, extraArgs: string[] = []): Promise<AgentProcess> {
  const dir = agents.dir(prefix);
  const first = await agents.start({ dir, extraArgs });
  await agents.stop(first);
  await seedTasks({ dataDir: first.dataDir, root: dir, owner: `renter-of-${prefix}`, count, baseImage: BASE_IMAGE });
  return agents.restart(first);
}

beforeAll(async () => {
  master = await agentWithVms("batu-paging-master-", MASTER_VMS);
  member = await agentWithVms("batu-paging-member-", MEMBER_VMS, ["--heartbeat-ms", "200"]);
  await joinGroup(member, master);
  const listed = async () => (await call(`${master.url}/master/group/list`, { token: master.adminToken })).body.member;
  await until(listed, (ms: any[]) => ms.some((m) => m.node_id === member.nodeId && m.state === "alive"));
  sdk = new HostClient(`127.0.0.1:${master.port}`, master.adminToken);
  whole = await sdk.vmList("group");
}, 120_000);

afterAll(() => agents.cleanup());

describe("SDK: the group-wide VM list in pages", () => {
  it("the whole list holds the master's VMs, then the member's", () => {
    expect(whole.map((v) => v.node_id)).toEqual([...Array(MASTER_VMS).fill(master.nodeId), ...Array(MEMBER_VMS).fill(member.nodeId)]);
  });

  it("one page: `limit` VMs and the cursor of the next; the last page names none", async () => {
    const first = await sdk.groupVmPage({ limit: 4 });
    expect(ids(first.vms)).toEqual(ids(whole.slice(0, 4)));
    expect(first).toMatchObject({ next: `${master.nodeId}/${whole[3]!.id}`, unreachable: [], unreachableCount: 0 });
    // Across the node boundary: the master's last VM, then the member's first three.
    const second = await sdk.groupVmPage({ limit: 4, after: first.next! });
    expect(ids(second.vms)).toEqual(ids(whole.slice(4, 8)));
    const last = await sdk.groupVmPage({ limit: 4, after: second.next! });
    expect([ids(last.vms), last.next]).toEqual([ids(whole.slice(8)), null]);
  });

  it("the iterator walks every page in order, of the group or of one node", async () => {
    const pages: GroupVmPage[] = [];
    for await (const page of sdk.groupVmPages({ limit: 2 })) pages.push(page);
    expect(pages.map((p) => p.vms.length)).toEqual([2, 2, 2, 2, 1]);
    expect(ids(pages.flatMap((p) => p.vms))).toEqual(ids(whole));
    const ofMember: VmItem[] = [];
    for await (const page of sdk.groupVmPages({ node_id: member.nodeId, limit: 3 })) ofMember.push(...page.vms);
    expect(ids(ofMember)).toEqual(ids(whole.slice(MASTER_VMS)));
  });

  it("a cursor of no VM is refused, naming `after`", async () => {
    const stale = sdk.groupVmPage({ limit: 2, after: `${master.nodeId}/no-such-vm` });
    await expect(stale).rejects.toBeInstanceOf(HostApiError);
    await expect(stale).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/^after: no VM no-such-vm/) });
  });
});

describe("batu vm list --group: page by page, the same output", () => {
  it("pages of any size print what the whole list printed, as JSON and as a table", async () => {
    for (const size of ["1", "2", "4", "500"]) {
      const r = await cli(["vm", "list", "--group", "--page-size", size, "--json"]);
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(JSON.parse(r.stdout)).toEqual(whole);
    }
    const table = await cli(["vm", "list", "--group", "--page-size", "3"]);
    expect(table.code).toBe(0);
    const [head, ...rows] = table.stdout.trimEnd().split("\n");
    expect(head!.split(/\s+/)).toEqual(["NODE", "ID", "NAME", "STATUS", "READY", "CPUS", "MEMORY", "IMAGE", "SSH", "OWNER"]);
    expect(rows.map((row) => row.split(/\s+/).slice(0, 2).join(" "))).toEqual(whole.map((v) => `${v.node_id!.slice(0, 12)} ${v.id}`));
    expect((await cli(["vm", "list", "--group"])).stdout).toBe(table.stdout);
  });

  it("--node lists one node's VMs; --limit the first n, of the group or of this host", async () => {
    const ofMember = await cli(["vm", "list", "--node", member.nodeId, "--page-size", "3", "--json"]);
    expect(JSON.parse(ofMember.stdout)).toEqual(whole.slice(MASTER_VMS));
    const firstSix = await cli(["vm", "list", "--group", "--limit", "6", "--page-size", "4", "--json"]);
    expect(JSON.parse(firstSix.stdout)).toEqual(whole.slice(0, 6));
    const own = JSON.parse((await cli(["vm", "list", "--json"])).stdout) as VmItem[];
    expect(own).toHaveLength(MASTER_VMS);
    expect(JSON.parse((await cli(["vm", "list", "--limit", "2", "--json"])).stdout)).toEqual(own.slice(0, 2));
  });

  it("bad flags are usage errors (exit 2) before any call", async () => {
    const pageWithoutGroup = await cli(["vm", "list", "--page-size", "2"]);
    expect([pageWithoutGroup.code, pageWithoutGroup.stderr]).toEqual([2, expect.stringContaining("--page-size: only with --group or --node")]);
    const badNode = await cli(["vm", "list", "--node", "not-a-node"]);
    expect([badNode.code, badNode.stderr]).toEqual([2, expect.stringContaining("--node: a node id")]);
    const badLimit = await cli(["vm", "list", "--group", "--limit", "0"]);
    expect(badLimit.code).toBe(2);
  });

  it("a member that does not answer is left out and named on stderr; the rest is listed", async () => {
    await agents.stop(member);
    const r = await cli(["vm", "list", "--group", "--page-size", "2", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(whole.slice(0, MASTER_VMS));
    expect(r.stderr).toMatch(new RegExp(`^left out, unreachable:\\n  ${member.nodeId.slice(0, 12)}: .+\\n$`));
  });
});
