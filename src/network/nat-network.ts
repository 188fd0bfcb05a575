import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../lib/logger.js";
import { prepared, type Db } from "../store/db.js";
import { DhcpServer, type FixedLease } from "./dnsmasq.js";
import { macFor } from "./mac.js";
import { lowestFree, parseSubnet, type Subnet } from "./ipv4.js";
import { addAddress, createTap, defaultRouteDevice, deleteLink, enableIpv4Forwarding, ensureBridge, linksNamed, removeAddress } from "./links.js";
import type { NatAttachment, NatNetwork } from "./model.js";
import { applyRuleset, deleteTable } from "./nft.js";
import { renderRuleset } from "./nft-ruleset.js";
import { linkNameFor } from "./link-names.js";

/** Taps of VMs on the NAT network: `bt-` and ten hex digits of the VM id's hash (IFNAMSIZ is 15). */
const TAP_PREFIX = "bt-";
export const tapFor = (vmId: string): string => linkNameFor(TAP_PREFIX, vmId);

export interface NatNetworkingOptions {
  db: Db;
  /** Where dnsmasq's files live. */
  runDir: string;
  bridge: string;
  /** The subnet, e.g. `10.123.0.0/24`. */
  cidr: string;
  /** Addresses the operator allows as VMs' public IPs (1:1 NAT). */
  publicIps: readonly string[];
  log: Logger;
}

/** Thrown when the NAT network's subnet has no address left. */
export class AddressesExhaustedError extends Error {}

/**
 * A host's NAT network, the default way guests are connected (as Incus' and libvirt's default
 * networks are): the bridge with the subnet's first address, dnsmasq for DHCP and DNS, a tap per
 * running VM, each VM's fixed address (kept in `vm_addresses`), and batu's nftables table rendered
 * from the running VMs (forwards, security groups, public IPs, masquerade). Every change rebuilds
 * the table whole, in one transaction, from the VMs as they are: after an agent restart or SIGKILL
 * the first sync makes it match them exactly.
 */
export class NatNetworking {
  readonly subnet: Subnet;
  readonly net: NatNetwork;
  private readonly dhcp: DhcpServer;
  private syncing: Promise<void> = Promise.resolve();
  private uplink: string | null = null;

  constructor(private readonly opts: NatNetworkingOptions) {
    const subnet = parseSubnet(opts.cidr);
    if (!subnet) throw new Error(`nat_cidr ${opts.cidr} is not a subnet batu can use (a.b.c.0/8..29)`);
    this.subnet = subnet;
    this.net = { bridge: opts.bridge, cidr: `${subnet.network}/${subnet.prefix}`, gateway: subnet.gateway };
    this.dhcp = new DhcpServer({
      runDir: opts.runDir,
      bridge: opts.bridge,
      gateway: subnet.gateway,
      range: { first: subnet.first, last: subnet.last, netmask: subnet.netmask },
      log: opts.log,
    });
  }

  /** The bridge with its address, IPv4 forwarding, dnsmasq with every VM's lease. */
  async start(leaseNames: (vmId: string) => string): Promise<void> {
    await mkdir(this.opts.runDir, { recursive: true });
    await ensureBridge(this.opts.bridge, `${this.subnet.gateway}/${this.subnet.prefix}`);
    await enableIpv4Forwarding();
    this.uplink = await defaultRouteDevice();
    await this.dhcp.start(this.leases(leaseNames));
    this.opts.log.info({ bridge: this.opts.bridge, cidr: this.net.cidr, uplink: this.uplink }, "bridged NAT network up");
  }

  async close(): Promise<void> {
    await this.dhcp.stop();
  }

  /** The VM's fixed address, given now if it has none yet. */
  addressOf(vmId: string): string {
    const held = prepared(this.opts.db, "SELECT ip FROM vm_addresses WHERE vm_id = ?").get(vmId) as { ip: string } | undefined;
    if (held) return held.ip;
    const taken = new Set((prepared(this.opts.db, "SELECT ip FROM vm_addresses").all() as { ip: string }[]).map((r) => r.ip));
    const ip = lowestFree(this.subnet, taken);
    if (!ip) throw new AddressesExhaustedError(`the NAT network ${this.net.cidr} has no address left`);
    prepared(this.opts.db, "INSERT INTO vm_addresses (vm_id, ip) VALUES (?, ?)").run(vmId, ip);
    return ip;
  }

  /** The VM's address if it has one (no new one given). */
  heldAddress(vmId: string): string | null {
    return (prepared(this.opts.db, "SELECT ip FROM vm_addresses WHERE vm_id = ?").get(vmId) as { ip: string } | undefined)?.ip ?? null;
  }

  /** Frees a deleted VM's address. */
  forget(vmId: string): void {
    prepared(this.opts.db, "DELETE FROM vm_addresses WHERE vm_id = ?").run(vmId);
  }

  /** A VM about to boot: its address, its lease, its tap on the bridge. */
  async plug(vmId: string, hostname: string, leaseNames: (vmId: string) => string): Promise<{ tap: string; ip: string; mac: string }> {
    const ip = this.addressOf(vmId);
    await this.dhcp.setLeases(this.leases(leaseNames, { vmId, name: hostname }));
    const tap = tapFor(vmId);
    await createTap(tap, this.opts.bridge, { isolated: true });
    return { tap, ip, mac: macFor(vmId) };
  }

  /** A VM whose QEMU is gone: its tap goes (its address stays until it is deleted). */
  async unplug(vmId: string): Promise<void> {
    await deleteLink(tapFor(vmId));
  }

  /** Removes the taps of VMs that do not run (an agent killed while one stopped). */
  async sweepTaps(running: ReadonlySet<string>): Promise<string[]> {
    const keep = new Set([...running].map(tapFor));
    const stale = (await linksNamed(TAP_PREFIX)).filter((t) => !keep.has(t));
    for (const t of stale) await deleteLink(t);
    return stale;
  }

  /** Whether `ip` is one the operator allows as a public IP here. */
  allowsPublicIp(ip: string): boolean {
    return this.opts.publicIps.includes(ip);
  }

  /**
   * Rebuilds the nftables table from the running VMs' attachments and the host's VXLAN peers, and
   * the public addresses on the uplink. Calls run one after another; the last one's state wins.
   */
  sync(attachments: () => NatAttachment[], lanPeers: () => string[] | undefined = () => undefined): Promise<void> {
    const run = this.syncing.then(async () => {
      const vms = attachments();
      const peers = lanPeers();
      await applyRuleset(renderRuleset(this.net, vms, peers ? { lanPeers: peers } : {}));
      await this.syncPublicAddresses(new Set(vms.flatMap((v) => (v.publicIp ? [v.publicIp] : []))));
    });
    this.syncing = run.catch(() => undefined);
    return run;
  }

  /** Removes batu's table (the NAT network is being turned off). */
  async removeRules(): Promise<void> {
    await deleteTable();
  }

  /** Public IPs in use are on the uplink (so the LAN's ARP finds this host); the others are not. */
  private async syncPublicAddresses(inUse: ReadonlySet<string>): Promise<void> {
    if (!this.uplink) return;
    for (const ip of this.opts.publicIps) {
      if (inUse.has(ip)) await addAddress(this.uplink, `${ip}/32`);
      else await removeAddress(this.uplink, `${ip}/32`);
    }
  }

  private leases(names: (vmId: string) => string, extra?: { vmId: string; name: string }): FixedLease[] {
    const rows = prepared(this.opts.db, "SELECT vm_id AS vmId, ip FROM vm_addresses").all() as { vmId: string; ip: string }[];
    return rows.map((r) => ({ mac: macFor(r.vmId), ip: r.ip, hostname: extra?.vmId === r.vmId ? extra.name : names(r.vmId) }));
  }
}

export const NAT_RUN_DIR = (dataDir: string) => join(dataDir, "network");
