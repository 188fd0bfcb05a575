import type { Hypervisor } from "../hypervisor/driver.js";
import type { NicSpec } from "../hypervisor/qemu/spec.js";
import type { QmpClient } from "../hypervisor/qemu/qmp/client.js";
import type { Logger } from "../lib/logger.js";
import { linkExists } from "../network/links.js";
import type { NatAttachment } from "../network/model.js";
import { tapFor, type NatNetworking } from "../network/nat-network.js";
import { parseNetworkFilters } from "../network/security-group.js";
import { forwardChange, forwardsDiff } from "./modify.js";
import { hostForwardsOf, macFor, USER_NIC_ID } from "./qemu-spec.js";
import type { VmRecord, VmRepo } from "./repo.js";
import { hostnameFor } from "./runtime.js";
import { forwardsOf, type VmSpec } from "./spec.js";
import type { LanFabric } from "../network/lan/fabric.js";
import { LAN_MTU, lanTapFor, type LanView } from "../network/lan/model.js";
import type { TapRateLimits, TapRateReading } from "../network/rate-limit.js";

/** The QEMU id of a VM's NIC on its LAN network. */
const LAN_NIC_ID = "lan0";

/** How a VM boots onto the host's network: its first NICs, and what its kernel command line says of them. */
export interface GuestNics {
  nics: NicSpec[];
  /** Appended to a kernel-booted image's command line (the demo guest reads its address there). */
  kernelArgs: string[];
}

/**
 * How VMs are connected, seen from the VM layer: what a boot gets, and what follows a VM's start,
 * end, change and deletion. Two ways: bridged NAT (the default where batu may manage bridges) and
 * QEMU's user-mode networking (the fallback), chosen once at agent start.
 */
export interface GuestNetwork {
  readonly mode: "bridge" | "user";
  /** Before a boot: the VM's NICs (bridged: its address and tap made). */
  prepare(vm: VmRecord, hostname: string): Promise<GuestNics>;
  /** QEMU runs (just booted): forwards and rules follow. */
  started(vmId: string): Promise<void>;
  /** An agent restart found the VM's QEMU running: its forwards set back to the record's. */
  adopted(vm: VmRecord, qmp: QmpClient, log: Logger): Promise<void>;
  /** After every VM was adopted or found stopped at agent start: leftovers cleaned, rules rebuilt. */
  reconciled(): Promise<void>;
  /** QEMU is gone: its tap and rules go. */
  ended(vmId: string): Promise<void>;
  /** A running VM's forwards, filters or public IP change from `vm`'s to `next`'s (before `next` is recorded). */
  changed(vm: VmRecord, next: VmSpec, qmp: QmpClient): Promise<void>;
  /** The VM was deleted: its address is free again. */
  forget(vmId: string): void;
  /** The guest's addresses on the host's network while it runs (DBC's `local_address`). */
  addressesOf(vmId: string): string[];
  /** The bandwidth caps on a running VM's taps, read back from the kernel (none in user mode: no taps). */
  tapCaps(vmId: string): Promise<Array<{ tap: string } & TapRateReading>>;
  /** Why `spec`'s network asks cannot be met here (a public IP not in the pool...), or null. */
  refusal(spec: Pick<VmSpec, "publicIp" | "networkFilters" | "lan">, vmId?: string): { field: string; message: string } | null;
  /**
   * The host's LAN networks made to match the master's `views` (null: the last ones) and this
   * host's VMs (network/lan/fabric.ts).
   */
  applyLans(views: LanView[] | null): Promise<void>;
  close(): Promise<void>;
}

/**
 * QEMU's user-mode networking: each guest alone behind QEMU's own NAT at 10.0.2.15, forwards made
 * by QEMU on the host (`forwardHost`). Needs no privileges; no security groups or public IPs.
 */
export class UserModeNetwork implements GuestNetwork {
  readonly mode = "user" as const;

  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly forwardHost: string,
    private readonly repo: VmRepo,
  ) {}

  async prepare(vm: VmRecord): Promise<GuestNics> {
    return { nics: [{ kind: "user", id: USER_NIC_ID, mac: macFor(vm.id), hostForwards: hostForwardsOf(vm.spec, this.forwardHost) }], kernelArgs: [] };
  }

  async started(): Promise<void> {}

  /**
   * Makes an adopted VM's live host forwards those of its record: an agent killed during a change of
   * ports may have changed QEMU's and not the record's. The record wins (its ports are the reserved
   * ones); a forward that cannot be set is logged, and the VM adopted all the same.
   */
  async adopted(vm: VmRecord, qmp: QmpClient, log: Logger): Promise<void> {
    await syncUserForwards(this.hypervisor, this.forwardHost, vm, qmp, log, this.repo);
  }

  async reconciled(): Promise<void> {}
  async ended(): Promise<void> {}

  async changed(vm: VmRecord, next: VmSpec, qmp: QmpClient): Promise<void> {
    await this.hypervisor.updateHostForwards(qmp, USER_NIC_ID, forwardChange(vm.spec, next, this.forwardHost));
  }

  forget(): void {}

  addressesOf(): string[] {
    return [];
  }

  refusal(spec: Pick<VmSpec, "publicIp" | "networkFilters" | "lan">): { field: string; message: string } | null {
    if (spec.lan) return { field: "network_name", message: "invalid network info: this node runs user-mode networking (no LAN networks)" };
    if (spec.publicIp) return { field: "public_ip", message: "invalid public ip: this node runs user-mode networking (no public IPs)" };
    if (spec.networkFilters?.length) return { field: "network_filters", message: "network_filters: this node runs user-mode networking (no per-VM firewall)" };
    return null;
  }

  async applyLans(): Promise<void> {}

  async tapCaps(): Promise<Array<{ tap: string } & TapRateReading>> {
    return [];
  }

  async close(): Promise<void> {}
}

/** Bridged NAT (nat-network.ts): a tap per running VM on the host's bridge, nftables for the rest. */
export class BridgedNetwork implements GuestNetwork {
  readonly mode = "bridge" as const;
  /** VMs whose QEMU runs on a tap of the bridge (a VM adopted from a user-mode boot is not one). */
  private readonly plugged = new Set<string>();
  /** Specs to use in the next sync in place of the recorded ones (a change not recorded yet). */
  private readonly pending = new Map<string, VmSpec>();

  constructor(
    private readonly nat: NatNetworking,
    private readonly lans: LanFabric,
    private readonly repo: VmRepo,
    private readonly hypervisor: Hypervisor,
    private readonly forwardHost: string,
    private readonly log: Logger,
    /** Bandwidth caps on the VMs' taps (network/rate-limit.ts), and each VM's cap; absent: none. */
    private readonly caps?: { rates: TapRateLimits; netMbitOf: (vm: VmRecord) => number | null },
  ) {}

  async prepare(vm: VmRecord, hostname: string): Promise<GuestNics> {
    const { tap, ip, mac } = await this.nat.plug(vm.id, hostname, (id) => leaseName(this.repo, id));
    const { prefix, gateway } = this.nat.subnet;
    const nics: NicSpec[] = [{ kind: "tap", id: USER_NIC_ID, mac, ifname: tap }];
    const kernelArgs = [`batu.ip=${ip}/${prefix}`, `batu.gw=${gateway}`, `batu.dns=${gateway}`];
    if (vm.spec.lan) {
      // The LAN NIC's address comes from the network's DHCP, as a renter's own image gets it.
      const lan = await this.lans.plug(vm.id, vm.spec.lan).catch(async (e: unknown) => {
        // Nothing of this boot stays: the NAT tap made a moment ago goes too.
        await this.nat.unplug(vm.id).catch(() => undefined);
        await this.lans.unplug(vm.id).catch(() => undefined);
        throw e;
      });
      nics.push({ kind: "tap", id: LAN_NIC_ID, mac: lan.mac, ifname: lan.tap, mtu: LAN_MTU });
      kernelArgs.push("batu.lan=dhcp");
    }
    return { nics, kernelArgs };
  }

  async started(vmId: string): Promise<void> {
    this.plugged.add(vmId);
    await this.sync();
  }

  async adopted(vm: VmRecord, qmp: QmpClient, log: Logger): Promise<void> {
    if (await linkExists(tapFor(vm.id))) this.plugged.add(vm.id);
    // Booted by an agent that ran user-mode networking: it keeps QEMU's forwards until its next boot.
    else await syncUserForwards(this.hypervisor, this.forwardHost, vm, qmp, log, this.repo);
  }

  async reconciled(): Promise<void> {
    const stale = await this.nat.sweepTaps(this.plugged);
    if (stale.length) this.log.info({ taps: stale }, "removed the taps of VMs that no longer run");
    await this.sync();
  }

  async ended(vmId: string): Promise<void> {
    // Also after a boot that failed before QEMU ran: its tap was made already.
    const wasPlugged = this.plugged.delete(vmId);
    await this.nat.unplug(vmId);
    await this.lans.unplug(vmId);
    if (wasPlugged) await this.sync();
  }

  async changed(vm: VmRecord, next: VmSpec): Promise<void> {
    if (!this.plugged.has(vm.id)) return;
    this.pending.set(vm.id, next);
    try {
      await this.sync();
    } catch (e) {
      this.pending.delete(vm.id);
      await this.sync().catch(() => undefined);
      throw e;
    } finally {
      this.pending.delete(vm.id);
    }
  }

  forget(vmId: string): void {
    this.nat.forget(vmId);
  }

  addressesOf(vmId: string): string[] {
    const ip = this.nat.heldAddress(vmId);
    const lanIp = this.repo.get(vmId)?.spec.lan?.ip;
    return [...(ip ? [ip] : []), ...(lanIp ? [lanIp] : [])];
  }

  async tapCaps(vmId: string): Promise<Array<{ tap: string } & TapRateReading>> {
    const vm = this.repo.get(vmId);
    if (!this.plugged.has(vmId) || !vm) return [];
    const taps = [tapFor(vmId), ...(vm.spec.lan ? [lanTapFor(vmId)] : [])];
    const none = { down_mbit: null, up_mbit: null };
    return Promise.all(taps.map(async (tap) => ({ tap, ...(this.caps ? await this.caps.rates.read(tap) : none) })));
  }

  async applyLans(views: LanView[] | null): Promise<void> {
    const local = this.repo.list().flatMap((vm) => (vm.spec.lan ? [vm.spec.lan] : []));
    await this.lans.apply(views, local, this.plugged);
    await this.sync();
  }

  refusal(spec: Pick<VmSpec, "publicIp" | "networkFilters" | "lan">, vmId?: string): { field: string; message: string } | null {
    if (!spec.publicIp) return null;
    if (!this.nat.allowsPublicIp(spec.publicIp)) return { field: "public_ip", message: `invalid public ip: ${spec.publicIp} is not one this node may give (config.json public_ips)` };
    const user = this.repo.list().find((v) => v.id !== vmId && v.spec.publicIp === spec.publicIp);
    if (user) return { field: "public_ip", message: "public ip being used" };
    return null;
  }

  async close(): Promise<void> {
    await this.nat.close();
    await this.lans.close();
  }

  private async sync(): Promise<void> {
    await this.nat.sync(
      () => this.attachments(),
      () => this.lans.peers(),
    );
    await this.syncCaps();
  }

  /** Each running VM's taps (its NAT tap, its LAN tap) capped to its Mbit/s, or uncapped. */
  private async syncCaps(): Promise<void> {
    if (!this.caps) return;
    const taps: { tap: string; mbit: number | null }[] = [];
    for (const id of this.plugged) {
      const vm = this.repo.get(id);
      if (!vm) continue;
      const mbit = this.caps.netMbitOf(vm);
      taps.push({ tap: tapFor(id), mbit });
      if (vm.spec.lan) taps.push({ tap: lanTapFor(id), mbit });
    }
    await this.caps.rates.apply(taps);
  }

  private attachments(): NatAttachment[] {
    const out: NatAttachment[] = [];
    for (const id of this.plugged) {
      const vm = this.repo.get(id);
      const ip = this.nat.heldAddress(id);
      if (!vm || !ip) continue;
      const spec = this.pending.get(id) ?? vm.spec;
      out.push({
        vmId: id,
        tap: tapFor(id),
        mac: macFor(id),
        ip,
        forwards: forwardsOf(spec),
        filters: parseNetworkFilters(spec.networkFilters ?? null),
        publicIp: spec.publicIp ?? null,
      });
    }
    return out;
  }
}

/** The host name a VM's DHCP lease carries: the one its guest is given (runtime.ts hostnameFor). */
export function leaseName(repo: VmRepo, vmId: string): string {
  const vm = repo.get(vmId);
  return vm ? hostnameFor(vm) : vmId;
}

/** Sets an adopted user-mode VM's live host forwards back to its record's (see UserModeNetwork.adopted). */
async function syncUserForwards(hypervisor: Hypervisor, forwardHost: string, vm: VmRecord, qmp: QmpClient, log: Logger, repo: VmRepo): Promise<void> {
  try {
    const change = forwardsDiff(await hypervisor.hostForwards(qmp, USER_NIC_ID), hostForwardsOf(vm.spec, forwardHost));
    if (change.remove.length === 0 && change.add.length === 0) return;
    log.warn({ change }, "host forwards differed from the record: set back");
    repo.log(vm.id, "agent restart: host forwards set back to the recorded ports");
    await hypervisor.updateHostForwards(qmp, USER_NIC_ID, change);
  } catch (e) {
    log.warn({ err: e }, "host forwards could not be checked against the record");
    repo.log(vm.id, `agent restart: host forwards could not be checked: ${e instanceof Error ? e.message : String(e)}`);
  }
}
