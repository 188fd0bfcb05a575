import { randomInt } from "node:crypto";
import { prepared, type Db } from "../../store/db.js";
import { intToIp, ipToInt, parseSubnet, type Subnet } from "../ipv4.js";
import { checkLanCidr, checkNetworkName, guestRange, lanLinks, lanMac, LanError, MAX_VNI, type LanAttachment, type LanMember, type LanView } from "./model.js";

/** A network as the registry keeps it. */
export interface LanRecord {
  name: string;
  owner: string;
  vni: number;
  cidr: string;
  createdAt: string;
  lastUsedAt: string;
  dhcpNode: string | null;
}

/** One member's address, and the host that runs it. */
export interface LanAddress {
  network: string;
  ip: string;
  nodeId: string;
  taskId: string | null;
  allocatedAt: string;
}

export interface LanRegistryOptions {
  db: Db;
  now?: () => Date;
  /** The hosts' NAT network: a LAN may not overlap it (its guests would not know which is which). */
  natSubnet?: Subnet;
  /** How long a just-given address stays although its host has not reported it yet (a heartbeat in flight). */
  reportGraceMs?: number;
}

const NETWORK_COLUMNS = "name, owner, vni, cidr, created_at AS createdAt, last_used_at AS lastUsedAt, dhcp_node AS dhcpNode";
const ADDRESS_COLUMNS = "network, ip, node_id AS nodeId, task_id AS taskId, allocated_at AS allocatedAt";

/**
 * The group's LAN networks and their members' addresses, kept by the master (or a lone agent):
 * names unique in the group, a VXLAN id each, addresses given here so they are unique across hosts,
 * and one host per network chosen to serve its DHCP. Hosts report their members at each heartbeat;
 * the registry follows (a task deleted on its host frees its address) and answers each host with
 * what it must build (`viewsFor`). Errors are DBC's texts (LanError).
 */
export class LanRegistry {
  private readonly now: () => Date;
  private readonly graceMs: number;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly opts: LanRegistryOptions) {
    this.now = opts.now ?? (() => new Date());
    this.graceMs = opts.reportGraceMs ?? 15_000;
  }

  /** Calls `listener` after each change of networks, members or DHCP hosts. */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  get(name: string): LanRecord | undefined {
    return prepared(this.opts.db, `SELECT ${NETWORK_COLUMNS} FROM lan_networks WHERE name = ?`).get(name) as LanRecord | undefined;
  }

  /** A renter's networks, by name. */
  list(owner: string): LanRecord[] {
    return prepared(this.opts.db, `SELECT ${NETWORK_COLUMNS} FROM lan_networks WHERE owner = ? ORDER BY name`).all(owner) as LanRecord[];
  }

  addresses(network: string): LanAddress[] {
    return prepared(this.opts.db, `SELECT ${ADDRESS_COLUMNS} FROM lan_addresses WHERE network = ? ORDER BY ip`).all(network) as LanAddress[];
  }

  /** `lan/create`: a new network of `owner`'s with a free VXLAN id. */
  create(nameIn: unknown, cidrIn: unknown, owner: string): LanRecord {
    const name = checkNetworkName(nameIn);
    const subnet = checkLanCidr(cidrIn, this.opts.natSubnet);
    const cidr = `${subnet.network}/${subnet.prefix}`;
    const db = this.opts.db;
    const record = db.transaction((): LanRecord => {
      if (this.get(name)) throw new LanError("network name already existed");
      if (prepared(db, "SELECT 1 FROM lan_networks WHERE cidr = ?").get(cidr)) throw new LanError("ip cidr already exist");
      const vni = this.freeVni();
      const at = this.now().toISOString();
      prepared(db, "INSERT INTO lan_networks (name, owner, vni, cidr, created_at, last_used_at, dhcp_node) VALUES (?, ?, ?, ?, ?, ?, NULL)").run(name, owner, vni, cidr, at, at);
      return this.get(name)!;
    })();
    this.changed();
    return record;
  }

  /** A random unused VNI (as DBC picks them); "network vni is full" after many tries. */
  private freeVni(): number {
    const used = prepared(this.opts.db, "SELECT 1 FROM lan_networks WHERE vni = ?");
    for (let i = 0; i < 64; i++) {
      const vni = randomInt(1, MAX_VNI + 1);
      if (!used.get(vni)) return vni;
    }
    throw new LanError("network vni is full");
  }

  /** `lan/delete`: only by its owner, only without members. */
  remove(name: string, owner: string): void {
    const db = this.opts.db;
    db.transaction(() => {
      const net = this.owned(name, owner);
      if (prepared(db, "SELECT 1 FROM lan_addresses WHERE network = ? LIMIT 1").get(net.name)) {
        throw new LanError("network is in used, please delete task in the network first");
      }
      prepared(db, "DELETE FROM lan_networks WHERE name = ?").run(net.name);
    })();
    this.changed();
  }

  /** The network `name` if `owner` owns it; DBC's errors otherwise. */
  owned(name: string, owner: string): LanRecord {
    const net = this.get(name);
    if (!net) throw new LanError("can not find network info");
    if (net.owner !== owner) throw new LanError("wallet error, you are not the owner of the network");
    return net;
  }

  /**
   * A task of `owner`'s about to be made on `nodeId` joins `name`: its address, held from now on
   * (`release` it if the task is not made). The network's first host serves its DHCP.
   */
  attach(name: string, owner: string, nodeId: string): LanAttachment {
    const db = this.opts.db;
    const attachment = db.transaction((): LanAttachment => {
      const net = this.owned(name, owner);
      const subnet = parseSubnet(net.cidr)!;
      const taken = new Set(this.addresses(net.name).map((a) => a.ip));
      const { first, last } = guestRange(subnet);
      let ip: string | null = null;
      for (let n = ipToInt(first); n <= ipToInt(last) && ip === null; n++) if (!taken.has(intToIp(n))) ip = intToIp(n);
      if (ip === null) throw new LanError(`network ${net.name} has no address left`);
      const at = this.now().toISOString();
      prepared(db, "INSERT INTO lan_addresses (network, ip, node_id, task_id, allocated_at) VALUES (?, ?, ?, NULL, ?)").run(net.name, ip, nodeId, at);
      prepared(db, "UPDATE lan_networks SET last_used_at = ?, dhcp_node = COALESCE(dhcp_node, ?) WHERE name = ?").run(at, nodeId, net.name);
      return { network: net.name, vni: net.vni, cidr: net.cidr, ip };
    })();
    this.changed();
    return attachment;
  }

  /** The task made with an address: its id, for `lan/<name>`'s members. */
  bindTask(network: string, ip: string, taskId: string): void {
    prepared(this.opts.db, "UPDATE lan_addresses SET task_id = ? WHERE network = ? AND ip = ?").run(taskId, network, ip);
  }

  /** A member removed from the group: its addresses are free (its VMs are no longer the group's). */
  forgetNode(nodeId: string): void {
    const db = this.opts.db;
    const networks = db.transaction((): string[] => {
      const held = (prepared(db, "SELECT DISTINCT network FROM lan_addresses WHERE node_id = ?").all(nodeId) as { network: string }[]).map((r) => r.network);
      prepared(db, "DELETE FROM lan_addresses WHERE node_id = ?").run(nodeId);
      for (const n of held) this.electDhcpHost(n);
      return held;
    })();
    if (networks.length) this.changed();
  }

  /** An address given for a task that was not made, or whose task was deleted. */
  release(network: string, ip: string): void {
    const db = this.opts.db;
    db.transaction(() => {
      prepared(db, "DELETE FROM lan_addresses WHERE network = ? AND ip = ?").run(network, ip);
      this.electDhcpHost(network);
    })();
    this.changed();
  }

  /**
   * What host `nodeId` runs now: its addresses not reported are freed (their tasks were deleted),
   * past the grace of an address just given (its task being made, or a member's heartbeat sent
   * before it was made still in flight; `boundGraceMs` for addresses bound to a task already: 0 for
   * this host's own, reported from its store). Reported ones the registry lacks are taken back
   * when free (a registry restored from an older backup). Networks with members are in use now.
   * True when anything changed.
   */
  report(nodeId: string, members: readonly LanMember[], opts: { boundGraceMs?: number } = {}): boolean {
    const db = this.opts.db;
    const now = this.now();
    const reported = new Map(members.map((m) => [`${m.network}/${m.ip}`, m]));
    const changed = db.transaction((): boolean => {
      let any = false;
      const held = prepared(db, `SELECT ${ADDRESS_COLUMNS} FROM lan_addresses WHERE node_id = ?`).all(nodeId) as LanAddress[];
      const touched = new Set<string>();
      for (const a of held) {
        const m = reported.get(`${a.network}/${a.ip}`);
        if (m) {
          reported.delete(`${a.network}/${a.ip}`);
          if (m.task_id && m.task_id !== a.taskId) this.bindTask(a.network, a.ip, m.task_id);
          continue;
        }
        const grace = a.taskId === null ? this.graceMs : (opts.boundGraceMs ?? this.graceMs);
        if (now.getTime() - Date.parse(a.allocatedAt) < grace) continue;
        prepared(db, "DELETE FROM lan_addresses WHERE network = ? AND ip = ?").run(a.network, a.ip);
        touched.add(a.network);
        any = true;
      }
      for (const m of reported.values()) {
        if (!this.get(m.network) || prepared(db, "SELECT 1 FROM lan_addresses WHERE network = ? AND ip = ?").get(m.network, m.ip)) continue;
        prepared(db, "INSERT INTO lan_addresses (network, ip, node_id, task_id, allocated_at) VALUES (?, ?, ?, ?, ?)").run(m.network, m.ip, nodeId, m.task_id, now.toISOString());
        touched.add(m.network);
        any = true;
      }
      for (const network of new Set(members.map((m) => m.network))) {
        prepared(db, "UPDATE lan_networks SET last_used_at = ? WHERE name = ?").run(now.toISOString(), network);
      }
      for (const network of touched) this.electDhcpHost(network);
      return any;
    })();
    if (changed) this.changed();
    return changed;
  }

  /** The DHCP host stays while it has members; else one of the hosts that have (none: none). */
  private electDhcpHost(network: string): void {
    const db = this.opts.db;
    const net = this.get(network);
    if (!net) return;
    const hosts = (prepared(db, "SELECT DISTINCT node_id AS nodeId FROM lan_addresses WHERE network = ? ORDER BY node_id").all(network) as { nodeId: string }[]).map((r) => r.nodeId);
    const next = net.dhcpNode && hosts.includes(net.dhcpNode) ? net.dhcpNode : (hosts[0] ?? null);
    if (next !== net.dhcpNode) prepared(db, "UPDATE lan_networks SET dhcp_node = ? WHERE name = ?").run(next, network);
  }

  /**
   * What host `nodeId` must build: each network it has members of, the other member hosts as its
   * VXLAN peers (by `addressOf`; a host with no known address is left out), and the fixed leases of
   * every member where it serves the DHCP.
   */
  viewsFor(nodeId: string, addressOf: (nodeId: string) => string | undefined): LanView[] {
    const db = this.opts.db;
    const names = (prepared(db, "SELECT DISTINCT network FROM lan_addresses WHERE node_id = ? ORDER BY network").all(nodeId) as { network: string }[]).map((r) => r.network);
    return names.flatMap((name): LanView[] => {
      const net = this.get(name);
      if (!net) return [];
      const members = this.addresses(name);
      const peers = [...new Set(members.map((m) => m.nodeId).filter((n) => n !== nodeId))].flatMap((n) => addressOf(n) ?? []).sort();
      const dhcp = net.dhcpNode === nodeId ? members.map((m) => ({ mac: lanMac(name, m.ip), ip: m.ip, hostname: m.taskId ?? `lan-${m.ip.replaceAll(".", "-")}` })) : null;
      return [{ network: name, vni: net.vni, cidr: net.cidr, peers: [...new Set(peers)], dhcp }];
    });
  }

  /** Removes networks without members unused for `unusedMs` (DBC: 3 days); their names. */
  sweepUnused(unusedMs: number): string[] {
    const db = this.opts.db;
    const before = new Date(this.now().getTime() - unusedMs).toISOString();
    const names = db.transaction((): string[] => {
      const stale = (
        prepared(db, "SELECT name FROM lan_networks n WHERE last_used_at < ? AND NOT EXISTS (SELECT 1 FROM lan_addresses a WHERE a.network = n.name)").all(before) as { name: string }[]
      ).map((r) => r.name);
      for (const name of stale) prepared(db, "DELETE FROM lan_networks WHERE name = ?").run(name);
      return stale;
    })();
    if (names.length) this.changed();
    return names;
  }
}

/** DBC's `lan` / `lan/<name>` object (reference §4.6). */
export function lanInfo(net: LanRecord, members: readonly LanAddress[]): Record<string, unknown> {
  const subnet = parseSubnet(net.cidr)!;
  const { first, last } = guestRange(subnet);
  const { bridge, vxlan } = lanLinks(net.name);
  return {
    network_name: net.name,
    bridge_name: bridge,
    vxlan_name: vxlan,
    vxlan_vni: String(net.vni),
    ip_cidr: net.cidr,
    ip_start: first,
    ip_end: last,
    dhcp_interface: net.dhcpNode ? bridge : "",
    machine_id: net.dhcpNode ?? "",
    rent_wallet: net.owner,
    members: members.map((m) => m.taskId ?? m.ip),
    lastUseTime: Math.floor(Date.parse(net.lastUsedAt) / 1000),
    native_flags: true,
  };
}
