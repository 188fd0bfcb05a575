import type { AcceleratorChoice } from "../hypervisor/accel.js";
import type { Hypervisor } from "../hypervisor/driver.js";
import type { Logger } from "../lib/logger.js";
import type { PortAllocator } from "../network/port-allocator.js";
import type { ImageCatalog } from "./images.js";
import { Operations } from "./operations.js";
import { VmPortReservations, type PortRangeKind } from "./ports.js";
import { VmQueries } from "./queries.js";
import type { VmRecord, VmRepo } from "./repo.js";
import type { IoLimits } from "./io-limits.js";
import type { HostCapacity } from "./resources.js";
import { VmRuntime } from "./runtime.js";
import { VmService } from "./service.js";
import type { GuestNetwork } from "./guest-network.js";
import { NoGpus, type GuestGpus } from "./guest-gpus.js";

export interface VmsOptions {
  dataDir: string;
  hypervisor: Hypervisor;
  repo: VmRepo;
  images: ImageCatalog;
  ports: PortAllocator<PortRangeKind>;
  accel: AcceleratorChoice;
  /** The host's capacity now (free disk changes). */
  capacity: () => Promise<HostCapacity>;
  /** Address host forwards and VNC listen on. */
  forwardHost: string;
  /** How VMs are connected to the host's network. */
  network: GuestNetwork;
  /** How VMs get GPUs; default none. */
  gpus?: GuestGpus;
  /** Why no VM may start on this host now (cordoned for maintenance), or null; default never. */
  admission?: () => string | null;
  /** A VM's caps on disk I/O and network (its grant's, else the operator's defaults); default none. */
  ioLimits?: (vm: VmRecord) => IoLimits;
  /** How long a graceful shutdown waits for the guest before powering off. */
  shutdownTimeoutMs: number;
  log: Logger;
}

/** The VM layer of one host: the lifecycle coordinator and the reads, over one runtime and one store. */
export interface Vms {
  service: VmService;
  queries: VmQueries;
}

/** Wires the VM layer's parts together (nothing starts: call `service.reconcile()` before serving). */
export function createVms(options: VmsOptions): Vms {
  const opts = { ...options, gpus: options.gpus ?? new NoGpus() };
  const runtime = new VmRuntime(opts);
  const operations = new Operations();
  const ports = new VmPortReservations(opts.ports, opts.repo);
  return {
    service: new VmService({ ...opts, runtime, operations, ports }),
    queries: new VmQueries({ repo: opts.repo, network: opts.network, runtime, hypervisor: opts.hypervisor, operations, log: opts.log }),
  };
}
