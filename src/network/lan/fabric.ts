import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../lib/logger.js";
import { DhcpServer, endLeftoverDhcp } from "../dnsmasq.js";
import { parseSubnet } from "../ipv4.js";
import { addAddress, createTap, deleteLink, ensureBridge, ensureVxlan, linksNamed, removeAddress, setVxlanPeers } from "../links.js";
import { dhcpServerAddress, LAN_MTU, LAN_TAP_PREFIX, lanLinks, lanMac, lanTapFor, VXLAN_PORT, type LanAttachment, type LanView } from "./model.js";

export interface LanFabricOptions {
  /** Where each network's dnsmasq keeps its files (a folder per network). */
  runDir: string;
  log: Logger;
}

/** batu's LAN links, by their exact form: nothing else of the host's with a like prefix is touched. */
const LAN_BRIDGE = /^bl-([A-Za-z0-9]{6,10})$/;
const LAN_TAP = /^bn-[0-9a-f]{10}$/;

/** A network this host must have: from its own VMs (always), with the master's view when it came. */
interface Wanted {
  network: string;
  vni: number;
  cidr: string;
  view: LanView | undefined;
}

/**
 * A host's side of the LAN networks: for each network it has VMs of, a bridge `bl-<name>` and a
 * VXLAN port `vl-<name>` whose flood list is the other member hosts; a tap per running member VM;
 * and, on the one host the master chose, dnsmasq with every member's fixed lease. Rebuilt from what
 * it is given at each `apply` (networks no longer wanted go), so an agent restart converges.
 */
export class LanFabric {
  private readonly dhcp = new Map<string, { server: DhcpServer; address: string }>();
  private running: Promise<unknown> = Promise.resolve();
  /** The master's last views, kept so a VM's boot between two heartbeats builds its network whole. */
  private views = new Map<string, LanView>();
  /** VMs whose tap was made (a boot under way, or QEMU running): an apply never takes their taps. */
  private readonly plugged = new Set<string>();
  /** The networks this host had at its last apply: whether it has any decides the VXLAN filter. */
  private built = new Set<string>();

  constructor(private readonly opts: LanFabricOptions) {}

  /**
   * The hosts this one exchanges VXLAN with, for nftables (only they may send it UDP 4789); undefined
   * while this host has no LAN network.
   */
  peers(): string[] | undefined {
    if (this.built.size === 0) return undefined;
    return [...new Set([...this.views.values()].filter((v) => this.built.has(v.network)).flatMap((v) => v.peers))].sort();
  }

  /** A member VM about to boot: its network's links, then its tap on the bridge. */
  plug(vmId: string, lan: LanAttachment): Promise<{ tap: string; mac: string }> {
    return this.serial(async () => {
      await this.build({ network: lan.network, vni: lan.vni, cidr: lan.cidr, view: this.views.get(lan.network) });
      this.built.add(lan.network);
      const tap = lanTapFor(vmId);
      this.plugged.add(vmId);
      await createTap(tap, lanLinks(lan.network).bridge, { isolated: false, mtu: LAN_MTU });
      return { tap, mac: lanMac(lan.network, lan.ip) };
    });
  }

  /** A member VM's QEMU is gone: its tap goes (the network stays while the host has members). */
  async unplug(vmId: string): Promise<void> {
    this.plugged.delete(vmId);
    await deleteLink(lanTapFor(vmId));
  }

  /**
   * Makes the host's LAN links those of `views` (the master's) and of `local` (this host's VMs'
   * networks, which stay even before the master knows them); everything else of batu's LANs goes,
   * and the taps of VMs not in `runningVms`.
   */
  apply(views: readonly LanView[] | null, local: readonly LanAttachment[], runningVms: ReadonlySet<string>): Promise<void> {
    return this.serial(async () => {
      if (views) this.views = new Map(views.map((v) => [v.network, v]));
      const wanted = new Map<string, Wanted>();
      for (const v of this.views.values()) wanted.set(v.network, { network: v.network, vni: v.vni, cidr: v.cidr, view: v });
      for (const l of local) if (!wanted.has(l.network)) wanted.set(l.network, { network: l.network, vni: l.vni, cidr: l.cidr, view: undefined });
      // One network that cannot be built (its dnsmasq refused to start...) does not stop the others.
      for (const w of wanted.values()) {
        try {
          await this.build(w);
        } catch (e) {
          this.opts.log.warn({ network: w.network, err: e }, "LAN network not built on this host");
        }
      }
      this.built = new Set(wanted.keys());
      for (const id of runningVms) this.plugged.add(id);
      const keepTaps = new Set([...this.plugged].map(lanTapFor));
      for (const tap of await linksNamed(LAN_TAP_PREFIX)) if (LAN_TAP.test(tap) && !keepTaps.has(tap)) await deleteLink(tap);
      for (const bridge of await linksNamed("bl-")) {
        const network = LAN_BRIDGE.exec(bridge)?.[1];
        if (network !== undefined && !wanted.has(network)) await this.tearDown(network);
      }
    });
  }

  /** Stops the DHCP servers (the links stay with the VMs that keep running). */
  async close(): Promise<void> {
    await this.serial(async () => {
      for (const { server } of this.dhcp.values()) await server.stop();
      this.dhcp.clear();
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.running.then(fn);
    this.running = run.catch(() => undefined);
    return run;
  }

  private async build(w: Wanted): Promise<void> {
    const { bridge, vxlan } = lanLinks(w.network);
    const subnet = parseSubnet(w.cidr);
    if (!subnet) throw new Error(`LAN ${w.network}: ${w.cidr} is not a subnet`);
    await ensureBridge(bridge, null);
    await ensureVxlan(vxlan, w.vni, bridge, { port: VXLAN_PORT, mtu: LAN_MTU });
    if (!w.view) return;
    await setVxlanPeers(vxlan, w.view.peers);
    const address = `${dhcpServerAddress(subnet)}/${subnet.prefix}`;
    const serving = this.dhcp.get(w.network);
    if (w.view.dhcp) {
      const leases = w.view.dhcp;
      if (serving) return void (await serving.server.setLeases(leases));
      // No route to the range: the host never sends its own traffic into a renter's network.
      await addAddress(bridge, address, { noPrefixRoute: true });
      const runDir = join(this.opts.runDir, w.network);
      await mkdir(runDir, { recursive: true });
      const server = new DhcpServer({
        runDir,
        bridge,
        gateway: dhcpServerAddress(subnet),
        range: { first: subnet.network, last: subnet.last, netmask: subnet.netmask },
        privateLan: true,
        log: this.opts.log,
      });
      await server.start(leases);
      this.dhcp.set(w.network, { server, address });
      this.opts.log.info({ network: w.network, bridge, leases: leases.length }, "serving a LAN network's DHCP");
    } else {
      if (serving) {
        await serving.server.stop();
        this.dhcp.delete(w.network);
      }
      // Also after an agent restart: the address and dnsmasq a DHCP host had, were it this one before.
      await removeAddress(bridge, address);
      await endLeftoverDhcp(join(this.opts.runDir, w.network), this.opts.log);
    }
  }

  private async tearDown(network: string): Promise<void> {
    const { bridge, vxlan } = lanLinks(network);
    const serving = this.dhcp.get(network);
    if (serving) await serving.server.stop();
    this.dhcp.delete(network);
    // A killed agent's dnsmasq: the next start of that network's server would end it; none comes.
    await endLeftoverDhcp(join(this.opts.runDir, network), this.opts.log);
    await deleteLink(vxlan);
    await deleteLink(bridge);
    await rm(join(this.opts.runDir, network), { recursive: true, force: true });
    this.views.delete(network);
    this.opts.log.info({ network }, "LAN network removed from this host");
  }
}
