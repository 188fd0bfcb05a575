// LAN networks across a group, end-to-end in network namespaces the test makes: h1 (the master) and
// h2 (its member) run agents with bridged networking; a renter's network joins a guest on each by a
// VXLAN between the two namespaces, the DHCP served on one of them. h3, another member, is rented
// to another renter. Nothing leaves this machine.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { call, removeDir, tempDir, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { until } from "./helpers/wait.js";
import { DEMO_TASK, DbcClient } from "./helpers/dbc-client.js";
import { Lan, netnsUnavailableReason, type NetnsHost } from "./helpers/netns.js";

const skipReason = await netnsUnavailableReason();
if (skipReason) console.warn(`test/lan-network.test.ts skipped: ${skipReason}`);

const AGENT_PORT = 10000;
const WEB_PORT = 18080;
const FLAGS = ["--network", "bridge", "--heartbeat-ms", "200", "--cpu-overcommit", "4", "--shutdown-timeout", "5"];
const NETWORK = "renterlan1";
const CIDR = "192.168.66.0/24";

interface Host {
  net: NetnsHost;
  dir: string;
  agent: AgentProcess;
}

describe.skipIf(skipReason !== null)("LAN networks across the group", () => {
  const agents = new TestAgents();
  let root: string;
  let lan: Lan;
  let h1: Host, h2: Host, h3: Host;
  const tasks = new Map<Host, string>();
  const alice = () => DbcClient.wallet("//batu-lannet-alice");
  const bob = () => DbcClient.wallet("//batu-lannet-bob");
  const api = (h: Host, path: string, opts: Parameters<typeof call>[1] = {}) =>
    call(`http://${h.net.ip}:${AGENT_PORT}${path}`, { token: h.agent.adminToken, socketPath: h.net.socketPath, ...opts });
  /** A renter's call made to the master for the node of host `h`. */
  const dbc = (h: Host) => new DbcClient(`http://${h1.net.ip}:${AGENT_PORT}`, h.agent.nodeId, { socketPath: h1.net.socketPath });
  const lanCall = (h: Host, path: string, wallet = alice(), additional: Record<string, unknown> = {}) => dbc(h).call(path, DbcClient.signed(wallet), additional).then((r) => r.body);
  /** What a guest's web server answers at `path`, through its forward on its host. */
  const guestPage = async (h: Host, path: string) => {
    const r = await lan.exec(h.net, ["curl", "-s", "-m", "8", `http://${h.net.ip}:${WEB_PORT}${path}`], 12_000).catch(() => ({ stdout: "" }));
    return r.stdout;
  };
  const links = async (h: Host) => (await lan.exec(h.net, ["ip", "-o", "link", "show"])).stdout;

  beforeAll(async () => {
    await cryptoWaitReady();
    root = tempDir("batu-lannet-");
    lan = await Lan.create(root);
    const hosts: Host[] = [];
    for (const i of [1, 2, 3]) {
      const dir = join(root, `h${i}`);
      mkdirSync(dir);
      hosts.push({ net: await lan.addHost(i), dir } as Host);
    }
    [h1, h2, h3] = hosts as [Host, Host, Host];
    await Promise.all(hosts.map(async (h) => (h.agent = await agents.start({ wrap: h.net.wrap, host: "0.0.0.0", port: AGENT_PORT, dir: h.dir, extraArgs: FLAGS }))));
    for (const h of [h2, h3]) {
      const j = await api(h, "/slave/group/join", { body: { master: `${h1.net.ip}:${AGENT_PORT}`, token: h1.agent.joinToken } });
      expect(j.status, JSON.stringify(j.body)).toBe(200);
    }
    for (const [h, w] of [[h1, alice()], [h2, alice()], [h3, bob()]] as const) {
      const g = await api(h1, "/common/rent/grant", { body: { node_id: h.agent.nodeId, wallet: w.address, until: new Date(Date.now() + 3600_000).toISOString() } });
      expect(g.status, JSON.stringify(g.body)).toBe(200);
    }
    await until(() => api(h1, "/master/group/list").then((r) => r.body.member), (m) => m?.length === 2 && m.every((x: any) => x.state === "alive"), 10_000, "members alive");
  }, 120_000);

  let logsShown = false;
  afterEach(({ task }) => {
    if (task.result?.state !== "fail" || logsShown) return;
    logsShown = true;
    for (const h of [h1, h2, h3]) if (h?.agent) console.error(`--- ${h.net.name} agent log, last lines:\n${h.agent.logs().split("\n").slice(-40).join("\n")}`);
  });

  afterAll(async () => {
    for (const h of [h1, h2, h3]) {
      if (!h?.agent) continue;
      const vms = await api(h, "/common/vm/list").catch(() => ({ body: [] as any[] }));
      for (const vm of Array.isArray(vms.body) ? vms.body : []) await api(h, "/common/vm/control", { body: { vm_id: vm.id, action: "delete" } }).catch(() => undefined);
    }
    await agents.cleanup();
    try {
      await lan?.destroy();
    } finally {
      if (root) removeDir(root);
    }
  }, 120_000);

  it("lan/create checks the name and range as DBC does; the network is the group's, listed with DBC's fields", async () => {
    expect((await lanCall(h2, "lan/create", alice(), { network_name: "abc", ip_cidr: CIDR })).message).toBe("network name requires a combination of 6 to 10 letters or numbers");
    expect((await lanCall(h2, "lan/create", alice(), { network_name: NETWORK, ip_cidr: "192.168.66.7/24" })).message).toMatch(/^invalid ip cidr/);
    // Made through member h2's node: the registry is the master's all the same.
    expect(await lanCall(h2, "lan/create", alice(), { network_name: NETWORK, ip_cidr: CIDR })).toEqual({ errcode: 0, message: "ok" });
    expect((await lanCall(h3, "lan/create", bob(), { network_name: NETWORK, ip_cidr: "192.168.77.0/24" })).message).toBe("network name already existed");
    const one = await lanCall(h1, `lan/${NETWORK}`);
    expect(one.errcode).toBe(0);
    expect(one.message).toMatchObject({ network_name: NETWORK, ip_cidr: CIDR, ip_start: "192.168.66.1", ip_end: "192.168.66.253", bridge_name: `bl-${NETWORK}`, rent_wallet: alice().address, members: [] });
    expect((await lanCall(h2, "lan")).message.map((n: any) => n.network_name)).toEqual([NETWORK]);
    expect((await lanCall(h3, "lan", bob())).message).toEqual([]);
    expect((await lanCall(h3, `lan/${NETWORK}`, bob())).message).toBe("wallet error, you are not the owner of the network");
  });

  it("another renter's task cannot join the network", async () => {
    const r = await lanCall(h3, "tasks/start", bob(), { ...DEMO_TASK, network_name: NETWORK });
    expect(r.message).toBe("wallet error, you are not the owner of the network");
    const unknown = await lanCall(h1, "tasks/start", alice(), { ...DEMO_TASK, network_name: "nosuchnet" });
    expect(unknown.message).toBe("can not find network info");
    // Only the master gives LAN NICs: a renter cannot hand one to a member itself.
    const forged = await dbc(h2).call("tasks/start", DbcClient.signed(alice()), { ...DEMO_TASK, batu_lan: { network: NETWORK, vni: 7, cidr: CIDR, ip: "192.168.66.9" } });
    expect(forged.body.errcode).not.toBe(0);
    for (const h of [h2, h3]) expect((await api(h, "/common/vm/list")).body).toEqual([]);
  });

  it("a task on each host joins it: the guests reach each other by their LAN addresses (DHCP across the VXLAN)", async () => {
    await Promise.all(
      [h1, h2].map(async (h) => {
        const r = await lanCall(h, "tasks/start", alice(), { ...DEMO_TASK, custom_port: [`tcp,${WEB_PORT}:80`], network_name: NETWORK });
        expect(r.errcode, JSON.stringify(r)).toBe(0);
        tasks.set(h, r.message.task_id);
        await until(() => lanCall(h, `tasks/${tasks.get(h)}`), (b) => b.message?.status === "running" && b.message?.ready === true, 90_000, `${h.net.name} VM ready`);
      }),
    );
    const lanIp = new Map<Host, string>();
    for (const h of [h1, h2]) {
      const d = await lanCall(h, `tasks/${tasks.get(h)}`);
      const ip = (d.message.local_address as string[]).find((a) => a.startsWith("192.168.66."));
      expect(ip, JSON.stringify(d.message.local_address)).toBeDefined();
      lanIp.set(h, ip!);
      // The guest asked DHCP for its LAN address (served on one of the two hosts) and got it.
      await until(() => guestPage(h, "/cgi-bin/addr"), (t) => t.includes(`eth1 ${ip}/24`), 60_000, `${h.net.name} guest's DHCP lease on eth1`);
    }
    expect(new Set(lanIp.values()).size).toBe(2);
    const info = (await lanCall(h1, `lan/${NETWORK}`)).message;
    expect([...info.members].sort()).toEqual([...tasks.values()].sort());
    // The hosts' VXLANs carry the network's id and send to each other only.
    for (const [h, peer] of [[h1, h2], [h2, h1]] as const) {
      expect((await lan.exec(h.net, ["ip", "-d", "link", "show", `vl-${NETWORK}`])).stdout).toContain(`vxlan id ${info.vxlan_vni} `);
      const fdb = (await lan.exec(h.net, ["bridge", "fdb", "show", "dev", `vl-${NETWORK}`])).stdout;
      await until(async () => (await lan.exec(h.net, ["bridge", "fdb", "show", "dev", `vl-${NETWORK}`])).stdout, (t) => t.includes(`00:00:00:00:00:00 dst ${peer.net.ip} `), 10_000, `${h.net.name} VXLAN peer`);
      expect(fdb).not.toContain(`dst ${h.net.ip} `);
      // Only the peer may send this host VXLAN: h3, no member of the network, may not.
      const table = await until(async () => (await lan.exec(h.net, ["nft", "list", "table", "inet", "batu"])).stdout, (t) => /set lan_peers[^}]*elements = \{ [^}]*\}/s.test(t), 10_000, `${h.net.name} lan_peers`);
      expect(table).toContain("udp dport 4789 ip saddr != @lan_peers drop");
      const peers = /set lan_peers[^}]*elements = \{ ([^}]*) \}/s.exec(table)![1]!.split(",").map((p) => p.trim());
      expect(peers).toEqual([peer.net.ip]);
    }
    for (const [from, to] of [[h1, h2], [h2, h1]] as const) {
      const page = await until(() => guestPage(from, `/cgi-bin/fetch?${lanIp.get(to)}`), (t) => t.includes("batu demo guest"), 30_000, `${from.net.name} guest → ${to.net.name} guest`);
      expect(page).toContain(`batu demo guest batu-${tasks.get(to)!.slice(0, 8).toLowerCase()}`);
    }
    // The host itself is not on the LAN: a guest cannot reach the DHCP host's address there but for DHCP.
    const dhcpHost = info.machine_id === h1.agent.nodeId ? h1 : h2;
    expect(await guestPage(dhcpHost, `/cgi-bin/fetch?192.168.66.254`)).toContain("fetch failed");
  }, 240_000);

  it("an agent SIGKILL leaves the LAN working, and the restarted agent leaves the links, peers and DHCP as they were", async () => {
    const state = async (h: Host) => {
      const links = (await lan.exec(h.net, ["ip", "-o", "link", "show"])).stdout.split("\n").filter((l) => /(bl|vl|bn)-/.test(l)).map((l) => l.replace(/^\d+: /, "").replace(/ state \S+/, ""));
      const peers = (await lan.exec(h.net, ["bridge", "fdb", "show", "dev", `vl-${NETWORK}`])).stdout.split("\n").filter((l) => l.startsWith("00:00:00:00:00:00"));
      const addr = (await lan.exec(h.net, ["ip", "-br", "addr", "show", "dev", `bl-${NETWORK}`])).stdout;
      return { links, peers, addr };
    };
    const dnsmasqs = async () => (await lan.exec(h1.net, ["ps", "-o", "args=", "-C", "dnsmasq"])).stdout.split("\n").filter((l) => l.includes(`lan/${NETWORK}/`)).length;
    const before = await Promise.all([state(h1), state(h2)]);
    expect(await dnsmasqs()).toBe(1);
    const lanIps = await Promise.all([h1, h2].map(async (h) => ((await lanCall(h, `tasks/${tasks.get(h)}`)).message.local_address as string[]).find((a) => a.startsWith("192.168.66."))!));
    // The master, the registry's and (first member) the DHCP's host, killed outright.
    await agents.stop(h1.agent, "kill");
    expect(await guestPage(h2, `/cgi-bin/fetch?${lanIps[0]}`)).toContain("batu demo guest");
    h1.agent = await agents.start({ wrap: h1.net.wrap, host: "0.0.0.0", port: AGENT_PORT, dir: h1.dir, extraArgs: FLAGS });
    await until(() => lanCall(h1, `tasks/${tasks.get(h1)}`), (b) => b.message?.status === "running", 30_000, "adopted");
    await until(() => Promise.all([state(h1), state(h2)]), (after) => JSON.stringify(after) === JSON.stringify(before), 15_000, "links as before");
    // The killed agent's dnsmasq is ended and one serves again (the restarted agent's).
    await until(dnsmasqs, (n) => n === 1, 10_000, "one DHCP server for the network");
    expect(await guestPage(h1, `/cgi-bin/fetch?${lanIps[1]}`)).toContain("batu demo guest");
    expect(await guestPage(h2, `/cgi-bin/fetch?${lanIps[0]}`)).toContain("batu demo guest");
  }, 120_000);

  it("the network is refused deletion while in use; deleting its tasks frees it, and lan/delete removes it from every host", async () => {
    expect((await lanCall(h3, `lan/delete/${NETWORK}`, bob())).message).toBe("wallet error, you are not the owner of the network");
    expect((await lanCall(h1, `lan/delete/${NETWORK}`)).message).toBe("network is in used, please delete task in the network first");
    for (const h of [h1, h2]) expect((await lanCall(h, `tasks/delete/${tasks.get(h)}`)).errcode).toBe(0);
    // The member's task is freed when its heartbeats stop reporting it (after a grace for calls in flight).
    await until(() => lanCall(h1, `lan/delete/${NETWORK}`), (b) => b.errcode === 0, 40_000, "lan/delete accepted");
    expect((await lanCall(h1, "lan")).message).toEqual([]);
    for (const h of [h1, h2]) {
      await until(() => links(h), (t) => !t.includes(`bl-${NETWORK}`) && !t.includes(`vl-${NETWORK}`) && !/bn-[0-9a-f]{10}/.test(t), 15_000, `${h.net.name} LAN links removed`);
    }
  }, 120_000);
});
