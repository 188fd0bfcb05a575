// Bridged NAT networking end-to-end, in network namespaces the test makes: h1 runs an agent with
// `--network bridge` (its bridge, dnsmasq and nftables table live in h1's namespace only), h2 is
// another machine of the LAN. Nothing leaves this machine: the LAN is a bridge in a namespace.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { call, tempDir, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { until } from "./helpers/wait.js";
import { DEMO_TASK, DbcClient } from "./helpers/dbc-client.js";
import { Lan, netnsUnavailableReason, type NetnsHost } from "./helpers/netns.js";

const skipReason = await netnsUnavailableReason();
if (skipReason) console.warn(`test/network.test.ts skipped: ${skipReason}`);

const AGENT_PORT = 10000;
const WEB_PORT = 18080;

describe.skipIf(skipReason !== null)("bridged NAT networking", () => {
  const agents = new TestAgents();
  let lan: Lan;
  let h1: NetnsHost, h2: NetnsHost;
  let dir: string;
  let agent: AgentProcess;
  let taskId: string;
  let publicIp: string;
  const alice = () => DbcClient.wallet("//batu-net-alice");
  const dbc = () => new DbcClient(`http://127.0.0.1:${AGENT_PORT}`, agent.nodeId, { socketPath: h1.socketPath });
  const task = async (path = "") => (await dbc().call(`tasks${path}`, DbcClient.signed(alice()))).body;
  const start = async () => {
    agent = await agents.start({ wrap: h1.wrap, host: "0.0.0.0", port: AGENT_PORT, dir, extraArgs: ["--network", "bridge", "--shutdown-timeout", "5"] });
  };
  /** HTTP status of a GET from inside `from`, 0 when nothing answered. */
  const statusFrom = async (from: NetnsHost, url: string) => {
    const r = await lan.exec(from, ["curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code}", url], 8_000).catch(() => ({ stdout: "0" }));
    return Number(r.stdout) || 0;
  };
  const table = async () => (await lan.exec(h1, ["nft", "list", "table", "inet", "batu"])).stdout;
  /** The task's caps as the host API reads them back from QEMU and the kernel. */
  const limits = async () => {
    const vms = await call(`http://127.0.0.1:${AGENT_PORT}/common/vm/list`, { token: agent.adminToken, socketPath: h1.socketPath });
    expect(vms.body).toHaveLength(1); // the task's VM, the only one on h1
    const id = (vms.body as Array<{ id: string }>)[0]!.id;
    return (await call(`http://127.0.0.1:${AGENT_PORT}/common/vm/limits?vm_id=${id}`, { token: agent.adminToken, socketPath: h1.socketPath })).body;
  };
  const expectCapped = async () => {
    const l = await limits();
    expect({ iops: l.disk_iops, mbps: l.disk_mbps, net: l.net_mbit }).toEqual({ iops: 500, mbps: 40, net: 50 });
    // Every disk in the VM's one throttle group, at the grant's MB/s and the node's IOPS.
    expect(l.enforced.disks.length).toBeGreaterThanOrEqual(1);
    for (const d of l.enforced.disks) expect(d).toEqual({ disk: d.disk, iops: 500, mbps: 40, group: "batu-vm" });
    expect(l.enforced.taps).toEqual([{ tap: expect.stringMatching(/^bt-/), down_mbit: 50, up_mbit: 50 }]);
  };

  beforeAll(async () => {
    await cryptoWaitReady();
    const root = tempDir("batu-net-");
    lan = await Lan.create(root);
    h1 = await lan.addHost(1);
    h2 = await lan.addHost(2);
    publicIp = `${lan.subnet}.200`;
    dir = join(root, "h1");
    mkdirSync(join(dir, "conf"), { recursive: true });
    writeFileSync(join(dir, "conf", "config.json"), JSON.stringify({ nickname: "", batu: true, public_ips: [publicIp], vm_disk_iops: 500 }));
    await start();
    const g = await call(`http://127.0.0.1:${AGENT_PORT}/common/rent/grant`, {
      token: agent.adminToken,
      socketPath: h1.socketPath,
      // The grant caps each of the renter's VMs' disk MB/s and network; its disk IOPS is the node's default.
      body: { node_id: agent.nodeId, wallet: alice().address, until: new Date(Date.now() + 3600_000).toISOString(), disk_mbps: 40, net_mbit: 50 },
    });
    expect(g.status, JSON.stringify(g.body)).toBe(200);
  }, 60_000);

  afterAll(async () => {
    await agents.cleanup();
    await lan?.destroy();
  }, 60_000);

  it("a task gets a fixed address on the bridge; its forward answers from the LAN and from the host", async () => {
    const r = await dbc().call("tasks/start", DbcClient.signed(alice()), { ...DEMO_TASK, custom_port: [`tcp,${WEB_PORT}:80`] });
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    taskId = r.body.message.task_id;
    const d = await until(() => task(`/${taskId}`), (b) => b.message?.status === "running" && b.message?.ready === true, 60_000, "VM ready");
    expect(d.message.local_address).toEqual(["10.123.0.2"]);
    expect(await table()).toMatch(/10\.123\.0\.2/);
    await until(() => statusFrom(h2, `http://${h1.ip}:${WEB_PORT}/`), (s) => s === 200, 15_000, "forward from the LAN");
    expect(await statusFrom(h1, `http://${h1.ip}:${WEB_PORT}/`)).toBe(200);
  }, 90_000);

  it("caps the task's disk I/O (QEMU throttle group) and bandwidth (its tap, both ways) from the grant and the node's defaults", async () => {
    await expectCapped();
  });

  it("a security group set live drops port 80 from one LAN address, and only from it", async () => {
    const m = await dbc().call(`tasks/modify/${taskId}`, DbcClient.signed(alice()), { new_network_filters: [`in,tcp,80,${h2.ip}/32,drop`] });
    expect(m.body.errcode, JSON.stringify(m.body)).toBe(0);
    expect((await task(`/${taskId}`)).message.network_filters).toEqual([`in,tcp,80,${h2.ip}/32,drop`]);
    expect(await statusFrom(h2, `http://${h1.ip}:${WEB_PORT}/`)).toBe(0);
    // The host itself is not a LAN peer of the rule.
    expect(await statusFrom(h1, `http://${h1.ip}:${WEB_PORT}/`)).toBe(200);
    // A malformed rule is refused, naming it; the group in force stays.
    const bad = await dbc().call(`tasks/modify/${taskId}`, DbcClient.signed(alice()), { new_network_filters: ["in,tcp,99999,0.0.0.0/0,accept"] });
    expect(bad.body.errcode).not.toBe(0);
    expect(JSON.stringify(bad.body)).toMatch(/99999/);
    expect(await statusFrom(h2, `http://${h1.ip}:${WEB_PORT}/`)).toBe(0);
    const cleared = await dbc().call(`tasks/modify/${taskId}`, DbcClient.signed(alice()), { new_network_filters: [] });
    expect(cleared.body.errcode).toBe(0);
    expect(await statusFrom(h2, `http://${h1.ip}:${WEB_PORT}/`)).toBe(200);
  }, 60_000);

  it("a public IP of the operator's pool answers 1:1; one outside it is refused", async () => {
    const refused = await dbc().call(`tasks/modify/${taskId}`, DbcClient.signed(alice()), { new_public_ip: `${lan.subnet}.201` });
    expect(refused.body.errcode).not.toBe(0);
    expect(JSON.stringify(refused.body)).toMatch(/invalid public ip/);
    const m = await dbc().call(`tasks/modify/${taskId}`, DbcClient.signed(alice()), { new_public_ip: publicIp });
    expect(m.body.errcode, JSON.stringify(m.body)).toBe(0);
    await until(() => statusFrom(h2, `http://${publicIp}/`), (s) => s === 200, 10_000, "public ip from the LAN");
  }, 60_000);

  it("after an agent SIGKILL the guest still answers and the restarted agent leaves the table as it was", async () => {
    const before = await table();
    await agents.stop(agent, "kill");
    expect(await statusFrom(h2, `http://${h1.ip}:${WEB_PORT}/`)).toBe(200);
    await start();
    await until(() => task(`/${taskId}`), (b) => b.message?.status === "running", 20_000, "adopted");
    expect(await table()).toBe(before);
    expect(await statusFrom(h2, `http://${publicIp}/`)).toBe(200);
    await expectCapped();
  }, 60_000);

  it("deleting the task takes its rules, its tap and its public address away", async () => {
    const r = await dbc().call(`tasks/delete/${taskId}`, DbcClient.signed(alice()));
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    await until(() => task(), (b) => Array.isArray(b.message) && b.message.length === 0, 30_000, "deleted");
    const t = await table();
    expect(t).not.toMatch(/10\.123\.0\.2/);
    expect(t).not.toMatch(new RegExp(publicIp.replace(/\./g, "\\.")));
    expect((await lan.exec(h1, ["ip", "-o", "link", "show"])).stdout).not.toMatch(/bt-[0-9a-f]{10}/);
    expect((await lan.exec(h1, ["ip", "-o", "addr", "show", "dev", "eth0"])).stdout).not.toContain(`${publicIp}/32`);
    expect(await statusFrom(h2, `http://${h1.ip}:${WEB_PORT}/`)).toBe(0);
  }, 60_000);
});
