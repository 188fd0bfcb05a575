import { join, resolve } from "node:path";
import { existsSync, mkdirSync } from "node:fs";
import { probeAccelerator, type AcceleratorChoice } from "../hypervisor/accel.js";
import { QemuHypervisor } from "../hypervisor/qemu/index.js";
import { PortAllocator } from "../network/port-allocator.js";
import { readHostInfo, type HostInfo } from "../host/host-info.js";
import type { Logger } from "../lib/logger.js";
import { ImageCatalog } from "../vm/images.js";
import { VmRepo, type VmRecord } from "../vm/repo.js";
import { effectiveIoLimits, type IoLimits } from "../vm/io-limits.js";
import { TapRateLimits } from "../network/rate-limit.js";
import { HostMaintenance } from "../host/maintenance.js";
import type { SystemConfig } from "../api/host.js";
import type { Hypervisor } from "../hypervisor/driver.js";
import type { PortRangeKind } from "../vm/ports.js";
import { createVms, type Vms } from "../vm/vms.js";
import type { HostCapacity } from "../vm/resources.js";
import type { AgentState } from "./state.js";
import { BridgedNetwork, leaseName, UserModeNetwork, type GuestNetwork } from "../vm/guest-network.js";
import { NAT_RUN_DIR, NatNetworking } from "../network/nat-network.js";
import { LanFabric } from "../network/lan/fabric.js";
import { PassthroughGpus, type GuestGpus } from "../vm/guest-gpus.js";
import { PciSysfs } from "../gpu/sysfs.js";
import { GpuPool } from "../gpu/pool.js";

/** The images the project builds (`images/demo/build.sh`), shipped beside the code. */
export const BUILT_IMAGES_DIR = resolve(import.meta.dirname, "../../build/images");

export interface VmOptions {
  /** Address VM port forwards and VNC listen on. */
  forwardHost: string;
  /** How VMs are connected: bridged NAT, QEMU's user-mode networking, or bridged where batu may (auto). */
  network: "auto" | "bridge" | "user";
  cpuOvercommit: number;
  /** How many times the data file system's size all VM disks may be promised (1: no overcommit). */
  diskOvercommit: number;
  shutdownTimeoutMs: number;
}

/** Memory kept for the host itself: VMs may hold the rest. */
const MEMORY_RESERVE_BYTES = 512 * 2 ** 20;

/** Host ports handed out when a request names none. */
export const PORT_RANGES: Record<PortRangeKind, { min: number; max: number }> = {
  forward: { min: 20000, max: 29999 },
  vnc: { min: 5900, max: 6999 },
};

/** Builds the VM layer of this agent: probes the accelerator, then adopts VMs left running. */
export async function startVmService(
  state: AgentState,
  opts: VmOptions,
  log: Logger,
): Promise<{
  vms: Vms;
  repo: VmRepo;
  hypervisor: Hypervisor;
  accel: AcceleratorChoice;
  images: ImageCatalog;
  capacityOf: (host: HostInfo) => HostCapacity;
  /** The host's capacity now (free disk changes). */
  capacity: () => Promise<HostCapacity>;
  /** How VMs are connected (bridged NAT, or user-mode). */
  network: GuestNetwork;
  /** The host's GPUs for passthrough. */
  gpus: GuestGpus;
  /** A VM's caps on disk I/O and network as they apply now. */
  ioLimitsOf: (vm: VmRecord) => IoLimits;
  /** Whether its operator cordoned the host (no VM starts). */
  maintenance: HostMaintenance;
}> {
  const accel = await probeAccelerator();
  if (accel.accel === "tcg") log.warn({ reason: accel.reason }, "KVM not usable: VMs run under TCG (software emulation, slower)");
  else log.info({ reason: accel.reason }, "VMs run under KVM");
  const imageCache = join(state.dataDir, "images");
  mkdirSync(imageCache, { recursive: true });
  const images = new ImageCatalog([imageCache, BUILT_IMAGES_DIR]);
  // The host's capacity as placement counts it, from a reading of the host (node info has one already).
  const capacityOf = (host: HostInfo): HostCapacity => ({
    cpuThreads: host.cpu.threads,
    memoryBytes: host.memory.totalBytes,
    diskTotalBytes: host.disk.totalBytes,
    diskFreeBytes: host.disk.freeBytes,
    diskOvercommit: opts.diskOvercommit,
    cpuOvercommit: opts.cpuOvercommit,
    memoryReserveBytes: MEMORY_RESERVE_BYTES,
    renterDiskQuotaBytes: quotaBytes(state.files.system.renter_disk_quota_gib),
  });
  const repo = new VmRepo(state.db);
  const hypervisor = new QemuHypervisor({ logger: log });
  const capacity = async () => capacityOf(await readHostInfo(state.dataDir));
  // The operator's defaults are read at each use: a change to config.json applies from the next boot.
  const ioLimitsOf = (vm: VmRecord): IoLimits => effectiveIoLimits(vm.spec.io, ioDefaultsOf(state.files.system));
  const maintenance = new HostMaintenance(state.dataDir);
  const network = await chooseNetwork(state, opts, repo, hypervisor, log, ioLimitsOf);
  const gpus = new PassthroughGpus({
    sysfs: new PciSysfs(),
    pool: new GpuPool(state.db),
    releaseToHost: state.files.system.gpu_release_to_host === true,
    log,
  });
  const vms = createVms({
    gpus,
    dataDir: state.dataDir,
    hypervisor,
    repo,
    images,
    ports: new PortAllocator<PortRangeKind>({ ranges: PORT_RANGES }),
    accel,
    forwardHost: opts.forwardHost,
    network,
    shutdownTimeoutMs: opts.shutdownTimeoutMs,
    capacity,
    ioLimits: ioLimitsOf,
    admission: () => maintenance.refusal(),
    log,
  });
  const report = await vms.service.reconcile();
  log.info(
    {
      adopted: report.adopted.length,
      foundStopped: report.foundStopped.length,
      finished: report.finished.length,
      orphansQuarantined: report.orphansQuarantined.length,
    },
    "vms reconciled",
  );
  return { vms, repo, hypervisor, accel, images, capacityOf, capacity, network, gpus, ioLimitsOf, maintenance };
}

/** The operator's caps for VMs whose grant sets none (config.json; absent or null: no cap). */
function ioDefaultsOf(system: SystemConfig): IoLimits {
  return { diskIops: system.vm_disk_iops ?? null, diskMBps: system.vm_disk_mbps ?? null, netMbit: system.vm_net_mbit ?? null };
}

/** The NAT network's defaults: Incus-like, a /24 of its own on a bridge of its own. */
export const DEFAULT_NAT_CIDR = "10.123.0.0/24";
export const DEFAULT_NAT_BRIDGE = "batubr0";

/**
 * Picks how VMs are connected, once, and logs why: bridged NAT needs root and `ip`, `nft` and
 * `dnsmasq`; without them (or with `--network user`) QEMU's user-mode networking.
 */
async function chooseNetwork(
  state: AgentState,
  opts: VmOptions,
  repo: VmRepo,
  hypervisor: Hypervisor,
  log: Logger,
  ioLimitsOf: (vm: VmRecord) => IoLimits,
): Promise<GuestNetwork> {
  const user = () => new UserModeNetwork(hypervisor, opts.forwardHost, repo);
  const wanted = opts.network === "auto" ? (state.files.system.network ?? "auto") : opts.network;
  if (wanted === "user") {
    log.info("networking: user-mode (QEMU's own NAT per guest; no security groups, public IPs or LANs)");
    return user();
  }
  const missing = process.getuid?.() !== 0 ? "root" : await firstMissingProgram(["ip", "nft", "dnsmasq", "bridge"]);
  if (missing) {
    if (wanted === "bridge") throw new Error(`bridged networking needs ${missing}`);
    log.warn({ missing }, "networking: user-mode, as bridged NAT needs what is missing");
    return user();
  }
  const nat = new NatNetworking({
    db: state.db,
    runDir: NAT_RUN_DIR(state.dataDir),
    bridge: state.files.system.nat_bridge ?? DEFAULT_NAT_BRIDGE,
    cidr: state.files.system.nat_cidr ?? DEFAULT_NAT_CIDR,
    publicIps: state.files.system.public_ips ?? [],
    log,
  });
  await nat.start((id) => leaseName(repo, id));
  const lans = new LanFabric({ runDir: join(NAT_RUN_DIR(state.dataDir), "lan"), log });
  return new BridgedNetwork(nat, lans, repo, hypervisor, opts.forwardHost, log, { rates: new TapRateLimits(), netMbitOf: (vm) => ioLimitsOf(vm).netMbit });
}

/** The first program of `names` not on PATH, or null. */
async function firstMissingProgram(names: string[]): Promise<string | null> {
  for (const n of names) {
    const found = (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").some((d) => existsSync(join(d, n)));
    if (!found) return n;
  }
  return null;
}

/** `renter_disk_quota_gib` (read at each check: the operator may change it while the agent runs) in bytes. */
function quotaBytes(gib: number | null | undefined): number | null {
  return gib === undefined || gib === null ? null : Math.floor(gib * 2 ** 30);
}
