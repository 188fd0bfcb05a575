import { describe, expect, it } from "vitest";
import { openDb } from "../../store/db.js";
import { parseSubnet } from "../ipv4.js";
import { LanRegistry, lanInfo } from "./registry.js";
import { lanMac, parseLanAttachment } from "./model.js";

const ALICE = "5Alice";
const BOB = "5Bob";

function registry(now = { t: Date.parse("2026-11-30T12:00:00Z") }) {
  const reg = new LanRegistry({ db: openDb(":memory:"), now: () => new Date(now.t), natSubnet: parseSubnet("10.123.0.0/24")!, reportGraceMs: 15_000 });
  return { reg, now };
}

describe("LanRegistry", () => {
  it("creates networks with DBC's checks: name, cidr, uniqueness", () => {
    const { reg } = registry();
    const net = reg.create("testnet1", "192.168.66.0/24", ALICE);
    expect(net).toMatchObject({ name: "testnet1", owner: ALICE, cidr: "192.168.66.0/24", dhcpNode: null });
    expect(net.vni).toBeGreaterThan(0);
    expect(net.vni).toBeLessThan(2 ** 24);
    const refused = (name: unknown, cidr: unknown) => {
      try {
        reg.create(name, cidr, BOB);
        return "created";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(refused("", "10.1.0.0/24")).toBe("network name can not be empty");
    expect(refused("abc", "10.1.0.0/24")).toBe("network name requires a combination of 6 to 10 letters or numbers");
    expect(refused("bad-name1", "10.1.0.0/24")).toBe("network name requires a combination of 6 to 10 letters or numbers");
    expect(refused("testnet1", "10.1.0.0/24")).toBe("network name already existed");
    expect(refused("testnet2", "")).toBe("ip cidr can not be empty");
    expect(refused("testnet2", "192.168.66.0/24")).toBe("ip cidr already exist");
    expect(refused("testnet2", "10.1.0.5/24")).toMatch(/^invalid ip cidr/);
    expect(refused("testnet2", "192.168.122.0/24")).toMatch(/^invalid ip cidr: .*libvirt/);
    expect(refused("testnet2", "10.123.0.0/16")).toMatch(/overlaps the hosts' NAT network/);
    expect(reg.list(BOB)).toEqual([]);
  });

  it("gives each member a free address and the network's first host its DHCP", () => {
    const { reg } = registry();
    reg.create("testnet1", "192.168.66.0/29", ALICE);
    const a = reg.attach("testnet1", ALICE, "node-a");
    const b = reg.attach("testnet1", ALICE, "node-b");
    expect([a.ip, b.ip]).toEqual(["192.168.66.1", "192.168.66.2"]);
    expect(reg.get("testnet1")!.dhcpNode).toBe("node-a");
    // .1 to .5 for guests: .6 is the DHCP server's, .7 the broadcast.
    for (const ip of ["192.168.66.3", "192.168.66.4", "192.168.66.5"]) expect(reg.attach("testnet1", ALICE, "node-b").ip).toBe(ip);
    expect(() => reg.attach("testnet1", ALICE, "node-b")).toThrow("network testnet1 has no address left");
    expect(() => reg.attach("testnet1", BOB, "node-b")).toThrow("wallet error, you are not the owner of the network");
    expect(() => reg.attach("nosuchnet", ALICE, "node-b")).toThrow("can not find network info");
  });

  it("answers each host its peers, and the DHCP host every member's lease", () => {
    const { reg } = registry();
    const { vni } = reg.create("testnet1", "192.168.66.0/24", ALICE);
    const a = reg.attach("testnet1", ALICE, "node-a");
    const b = reg.attach("testnet1", ALICE, "node-b");
    reg.bindTask("testnet1", b.ip, "taskB");
    const addressOf = (n: string) => ({ "node-a": "10.0.0.1", "node-b": "10.0.0.2" })[n];
    expect(reg.viewsFor("node-a", addressOf)).toEqual([
      {
        network: "testnet1",
        vni,
        cidr: "192.168.66.0/24",
        peers: ["10.0.0.2"],
        dhcp: [
          { mac: lanMac("testnet1", a.ip), ip: a.ip, hostname: "lan-192-168-66-1" },
          { mac: lanMac("testnet1", b.ip), ip: b.ip, hostname: "taskB" },
        ],
      },
    ]);
    expect(reg.viewsFor("node-b", addressOf)).toEqual([{ network: "testnet1", vni, cidr: "192.168.66.0/24", peers: ["10.0.0.1"], dhcp: null }]);
    expect(reg.viewsFor("node-c", addressOf)).toEqual([]);
  });

  it("frees what a host no longer reports after the grace, and moves the DHCP to a host with members", () => {
    const { reg, now } = registry();
    reg.create("testnet1", "192.168.66.0/24", ALICE);
    const a = reg.attach("testnet1", ALICE, "node-a");
    const b = reg.attach("testnet1", ALICE, "node-b");
    // A heartbeat sent before the task was made: within the grace, nothing is freed.
    expect(reg.report("node-a", [])).toBe(false);
    expect(reg.addresses("testnet1").map((x) => x.ip)).toEqual([a.ip, b.ip]);
    now.t += 16_000;
    reg.report("node-b", [{ network: "testnet1", ip: b.ip, task_id: "taskB" }]);
    expect(reg.addresses("testnet1").find((x) => x.ip === b.ip)!.taskId).toBe("taskB");
    expect(reg.report("node-a", [])).toBe(true);
    expect(reg.addresses("testnet1").map((x) => x.ip)).toEqual([b.ip]);
    expect(reg.get("testnet1")!.dhcpNode).toBe("node-b");
    // A host's own report of a bound address is final at once (boundGraceMs 0).
    const c = reg.attach("testnet1", ALICE, "node-b");
    reg.bindTask("testnet1", c.ip, "taskC");
    reg.report("node-b", [{ network: "testnet1", ip: b.ip, task_id: "taskB" }], { boundGraceMs: 0 });
    expect(reg.addresses("testnet1").map((x) => x.ip)).toEqual([b.ip]);
  });

  it("frees a removed member's addresses, and moves the DHCP off it", () => {
    const { reg } = registry();
    reg.create("testnet1", "192.168.66.0/24", ALICE);
    reg.attach("testnet1", ALICE, "node-a");
    const b = reg.attach("testnet1", ALICE, "node-b");
    reg.forgetNode("node-a");
    expect(reg.addresses("testnet1").map((x) => x.ip)).toEqual([b.ip]);
    expect(reg.get("testnet1")!.dhcpNode).toBe("node-b");
  });

  it("deletes only for the owner and only without members; sweeps networks unused too long", () => {
    const { reg, now } = registry();
    reg.create("testnet1", "192.168.66.0/24", ALICE);
    reg.create("testnet2", "192.168.67.0/24", ALICE);
    const a = reg.attach("testnet1", ALICE, "node-a");
    expect(() => reg.remove("testnet1", BOB)).toThrow("wallet error, you are not the owner of the network");
    expect(() => reg.remove("testnet1", ALICE)).toThrow("network is in used, please delete task in the network first");
    reg.release("testnet1", a.ip);
    reg.remove("testnet1", ALICE);
    expect(reg.get("testnet1")).toBeUndefined();
    now.t += 2 * 86_400_000;
    expect(reg.sweepUnused(3 * 86_400_000)).toEqual([]);
    now.t += 2 * 86_400_000;
    expect(reg.sweepUnused(3 * 86_400_000)).toEqual(["testnet2"]);
    expect(reg.list(ALICE)).toEqual([]);
  });

  it("shows a network with DBC's fields", () => {
    const { reg } = registry();
    const net = reg.create("testnet1", "192.168.66.0/24", ALICE);
    const a = reg.attach("testnet1", ALICE, "node-a");
    reg.bindTask("testnet1", a.ip, "taskA");
    const info = lanInfo(reg.get("testnet1")!, reg.addresses("testnet1"));
    expect(info).toMatchObject({
      network_name: "testnet1",
      bridge_name: "bl-testnet1",
      vxlan_name: "vl-testnet1",
      vxlan_vni: String(net.vni),
      ip_cidr: "192.168.66.0/24",
      ip_start: "192.168.66.1",
      ip_end: "192.168.66.253",
      machine_id: "node-a",
      rent_wallet: ALICE,
      members: ["taskA"],
    });
  });
});

describe("parseLanAttachment", () => {
  it("takes only a well-formed attachment whose address is a guest's of its network", () => {
    const ok = { network: "testnet1", vni: 42, cidr: "192.168.66.0/24", ip: "192.168.66.9" };
    expect(parseLanAttachment(ok)).toEqual(ok);
    expect(parseLanAttachment({ ...ok, ip: "192.168.67.9" })).toBeNull();
    expect(parseLanAttachment({ ...ok, ip: "192.168.66.254" })).toBeNull();
    expect(parseLanAttachment({ ...ok, vni: 0 })).toBeNull();
    expect(parseLanAttachment({ ...ok, network: "x;rm" })).toBeNull();
    expect(parseLanAttachment("testnet1")).toBeNull();
  });
});
