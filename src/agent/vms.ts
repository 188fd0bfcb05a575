import { join, resolve } from "node:path";
import { mkdirSync } from "node:fs";
import { probeAccelerator, type AcceleratorChoice } from "../hypervisor/accel.js";
import { QemuHypervisor } from "../hypervisor/qemu/index.js";
import { PortAllocator } from "../network/port-allocator.js";
import { readHostInfo, type HostInfo } from "../host/host-info.js";
import type { Logger } from "../lib/logger.js";
import { ImageCatalog } from "../vm/images.js";
import { VmRepo } from "../vm/repo.js";
import type { Hypervisor } from "../hypervisor/driver.js";
import type { PortRangeKind } from "../vm/ports.js";
import { createVms, type Vms } from "../vm/vms.js";
import type { HostCapacity } from "../vm/resources.js";
import type { AgentState } from "./state.js";

/** The images the project builds (`images/demo/build.sh`), shipped beside the code. */
export const BUILT_IMAGES_DIR = resolve(import.meta.dirname, "../../build/images");

export interface VmOptions {
  /** Address VM port forwards and VNC listen on. */
  forwardHost: string;
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
  const vms = createVms({
    dataDir: state.dataDir,
    hypervisor,
    repo,
    images,
    ports: new PortAllocator<PortRangeKind>({ ranges: PORT_RANGES }),
    accel,
    forwardHost: opts.forwardHost,
    shutdownTimeoutMs: opts.shutdownTimeoutMs,
    capacity,
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
  return { vms, repo, hypervisor, accel, images, capacityOf, capacity };
}

/** `renter_disk_quota_gib` (read at each check: the operator may change it while the agent runs) in bytes. */
function quotaBytes(gib: number | null | undefined): number | null {
  return gib === undefined || gib === null ? null : Math.floor(gib * 2 ** 30);
}
