/**
 * The ruleset loaded into a real kernel, inside network namespaces made for the test (the host's
 * own network and nftables are never touched). Needs root, `ip` and `nft`; skipped otherwise.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exec } from "../lib/exec.js";
import type { NatAttachment, NatNetwork } from "./model.js";
import { NftError, applyRuleset, deleteTable, listTable } from "./nft.js";
import { renderRuleset } from "./nft-ruleset.js";
import { parseNetworkFilters } from "./security-group.js";

function whyNotRunnable(): string | null {
  if (process.getuid?.() !== 0) return "not root";
  for (const [tool, flag] of [["ip", "-V"], ["nft", "--version"]] as const) {
    if (spawnSync(tool, [flag]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}
const skipReason = whyNotRunnable();
if (skipReason !== null) console.warn(`nft.test.ts skipped: ${skipReason} (it needs root, ip and nft to make network namespaces)`);

const tag = `${process.pid}-${randomBytes(3).toString("hex")}`;
/** The host under test, a guest behind its bridge, a client on its LAN. */
const ns = { host: `batu-nft-h-${tag}`, guest: `batu-nft-g-${tag}`, lan: `batu-nft-l-${tag}` };
const inHost = { netns: ns.host };

const net: NatNetwork = { bridge: "batubr0", cidr: "10.123.0.0/16", gateway: "10.123.0.1" };
const guest: NatAttachment = {
  vmId: "vm-a.1", // not a DBC id: its chain names must be cut to [A-Za-z0-9_] and still load
  tap: "bt-aaaaaaaaaa",
  mac: "52:54:00:00:00:05",
  ip: "10.123.0.5",
  forwards: [
    { proto: "tcp", hostPort: 2222, guestPort: 22 },
    { proto: "tcp", hostPort: 8080, guestPort: 80 },
    { proto: "udp", hostPort: 5353, guestPort: 53 },
  ],
  filters: parseNetworkFilters(["in,tcp,80,192.168.77.2,drop", "in,tcp,22,192.168.77.2/32,accept", "out,udp,all,9.9.9.9,drop"]),
  publicIp: "203.0.113.10",
};
const other: NatAttachment = {
  vmId: "OtherVm0123456789abcd",
  tap: "bt-bbbbbbbbbb",
  mac: "52:54:00:00:00:06",
  ip: "10.123.0.6",
  forwards: [{ proto: "udp", hostPort: 40000, guestPort: 4000 }],
  filters: parseNetworkFilters(["inout,icmp,all,0.0.0.0/0,drop"]),
  publicIp: "203.0.113.11",
};

describe.skipIf(skipReason !== null)("nft in a network namespace", () => {
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    for (const name of Object.values(ns)) await exec("ip", ["netns", "add", name]);
  });

  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    // Deleting a namespace takes its links, bridge and nftables with it.
    for (const name of Object.values(ns)) await exec("ip", ["netns", "del", name]).catch(() => undefined);
  });

  it("loads, lists, replaces and deletes table inet batu, and nothing else", async () => {
    await applyRuleset("table inet other {\n\tchain c {\n\t}\n}\n", inHost);
    expect(await listTable(inHost)).toBeNull();

    await applyRuleset(renderRuleset(net, [guest, other], { lanPeers: ["10.77.0.2"] }), inHost);
    const both = await listTable(inHost);
    expect(both).toContain("2222 : 10.123.0.5 . 22");
    expect(both).toContain("40000 : 10.123.0.6 . 4000");
    expect(both).toContain("ip daddr 203.0.113.11 dnat ip to 10.123.0.6");
    expect(both).toContain("chain vm_in_vm_a_1 {");
    expect(both).toContain("ip daddr 10.123.0.6 jump vm_in_OtherVm0123456789abcd");
    expect(both).toContain('iifname "bl-*" drop');
    expect(both).toContain("udp dport 4789 ip saddr != @lan_peers drop");

    await applyRuleset(renderRuleset(net, [guest]), inHost);
    const one = await listTable(inHost);
    expect(one).toContain("2222 : 10.123.0.5 . 22");
    for (const gone of ["10.123.0.6", "203.0.113.11", "OtherVm", "bl-abc123"]) expect(one).not.toContain(gone);

    // Refused by the parser, then by the kernel (a jump to no chain): either way nothing changes.
    const valid = renderRuleset(net, []);
    await expect(applyRuleset(valid.replace("policy accept;", "policy accept; nonsense"), inHost)).rejects.toThrow(NftError);
    const kernelRefusal = applyRuleset(valid.replace("ct state established,related accept", "jump no_such_chain"), inHost);
    await expect(kernelRefusal).rejects.toThrow(/in netns batu-nft-h-.*No such file or directory/);
    expect(await listTable(inHost)).toBe(one);

    await deleteTable(inHost);
    expect(await listTable(inHost)).toBeNull();
    await deleteTable(inHost);
    const tables = await exec("ip", ["netns", "exec", ns.host, "nft", "list", "tables"]);
    expect(tables.stdout.trim()).toBe("table inet other");
  });

  it("carries packets: forwards, security group, host's own address, hairpin, public IP, masquerade", async () => {
    const ip = (name: string, ...args: string[]) => exec("ip", ["-n", name, ...args]);
    for (const name of Object.values(ns)) await ip(name, "link", "set", "lo", "up");
    await ip(ns.host, "link", "add", "batubr0", "type", "bridge");
    await ip(ns.host, "addr", "add", "10.123.0.1/16", "dev", "batubr0");
    await ip(ns.host, "link", "set", "batubr0", "up");
    await ip(ns.host, "link", "add", "hg0", "type", "veth", "peer", "name", "ge0", "netns", ns.guest);
    await ip(ns.host, "link", "set", "hg0", "master", "batubr0", "up");
    await ip(ns.guest, "addr", "add", "10.123.0.5/16", "dev", "ge0");
    await ip(ns.guest, "link", "set", "ge0", "up");
    await ip(ns.guest, "route", "add", "default", "via", "10.123.0.1");
    await ip(ns.host, "link", "add", "hl0", "type", "veth", "peer", "name", "le0", "netns", ns.lan);
    await ip(ns.host, "addr", "add", "192.168.77.1/24", "dev", "hl0");
    await ip(ns.host, "link", "set", "hl0", "up");
    await ip(ns.lan, "addr", "add", "192.168.77.2/24", "dev", "le0");
    await ip(ns.lan, "link", "set", "le0", "up");
    await ip(ns.lan, "route", "add", "203.0.113.10/32", "via", "192.168.77.1");
    await exec("ip", ["netns", "exec", ns.host, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // Where br_netfilter is loaded (Docker loads it) its "bridged DNAT" sends a packet DNATed back
    // into the bridge it came from straight out at L2, where the port it came in by (or an isolated
    // one) refuses it: hairpin needs it off. The sysctl is per namespace; -e: absent without the module.
    await exec("ip", ["netns", "exec", ns.host, "sysctl", "-qew", "net.bridge.bridge-nf-call-iptables=0"]);
    await applyRuleset(renderRuleset(net, [guest, other]), inHost);

    // The guest (and the LAN client, for the other way) answers on tcp 22 and 80 and udp 53 with
    // the address it saw the other end come from.
    const server = `const net = require("node:net"), dgram = require("node:dgram"); let ready = 0;
      const up = () => { if (++ready === 3) console.log("ready"); };
      for (const p of [22, 80]) net.createServer((s) => s.end("tcp " + p + " from " + s.remoteAddress)).listen(p, "0.0.0.0", up);
      const u = dgram.createSocket("udp4"); u.on("message", (_m, r) => u.send("udp 53 from " + r.address, r.port, r.address)); u.bind(53, up);`;
    for (const where of [ns.guest, ns.lan]) {
      const listener = spawn("ip", ["netns", "exec", where, process.execPath, "-e", server], { stdio: ["ignore", "pipe", "inherit"] });
      children.push(listener);
      await new Promise<void>((resolve, reject) => {
        listener.stdout.on("data", (b: Buffer) => {
          if (b.toString().includes("ready")) resolve();
        });
        listener.on("exit", (code) => reject(new Error(`listener in ${where} exited with ${String(code)}`)));
      });
    }

    const client = `const [proto, host, port] = process.argv.slice(1); const done = (t) => { console.log(t); process.exit(0); };
      setTimeout(() => done("timeout"), 1500);
      if (proto === "tcp") { const s = require("node:net").connect(+port, host); let d = ""; s.on("data", (b) => (d += b)); s.on("end", () => done(d)); s.on("error", (e) => done("error " + e.code)); }
      else { const u = require("dgram").createSocket("udp4"); u.on("message", (m) => done(String(m))); u.send("hi", +port, host); }`;
    const ask = async (from: string, proto: string, host: string, port: number) =>
      (await exec("ip", ["netns", "exec", from, process.execPath, "-e", client, proto, host, String(port)])).stdout.trim();

    // (a) forwards reach the guest from the LAN, which sees the client's own address.
    expect(await ask(ns.lan, "tcp", "192.168.77.1", 2222)).toBe("tcp 22 from 192.168.77.2");
    expect(await ask(ns.lan, "udp", "192.168.77.1", 5353)).toBe("udp 53 from 192.168.77.2");
    // (b) the security group drops port 80 from the client, while the guest does answer on 80.
    expect(await ask(ns.lan, "tcp", "192.168.77.1", 8080)).toBe("timeout");
    expect(await ask(ns.host, "tcp", "192.168.77.1", 8080)).toBe("tcp 80 from 192.168.77.1");
    // The host reaches a forward by its own address (nat output); a guest by hairpin, masqueraded.
    expect(await ask(ns.host, "tcp", "192.168.77.1", 2222)).toBe("tcp 22 from 192.168.77.1");
    expect(await ask(ns.guest, "tcp", "192.168.77.1", 2222)).toBe("tcp 22 from 10.123.0.1");
    // The public IP reaches the guest 1:1, its ports included.
    expect(await ask(ns.lan, "tcp", "203.0.113.10", 22)).toBe("tcp 22 from 192.168.77.2");
    // Going out, a guest with a public IP is SNATed to it; one without is masqueraded.
    expect(await ask(ns.guest, "tcp", "192.168.77.2", 22)).toBe("tcp 22 from 203.0.113.10");
    await applyRuleset(renderRuleset(net, [{ ...guest, publicIp: null }]), inHost);
    expect(await ask(ns.guest, "udp", "192.168.77.2", 53)).toBe("udp 53 from 192.168.77.1");
  });
});
