import type { GpuSpec } from "../hypervisor/qemu/spec.js";
import type { Logger } from "../lib/logger.js";
import { GpuAllocationError, type GpuPool } from "../gpu/pool.js";
import type { PciSysfs } from "../gpu/sysfs.js";
import { readGpuUnits, type GpuUnit } from "../gpu/units.js";
import { bindToVfio, releaseFromVfio } from "../gpu/vfio.js";
import { numaCpus, pinProcess } from "../gpu/numa.js";
import type { VmRecord } from "./repo.js";

/** One GPU of the host as node info shows it: which VM holds it is for its owner and the operator only. */
export interface GpuView {
  address: string;
  vendor: string;
  model: string;
  memoryMiB: number | null;
  numaNode: number | null;
  state: "free" | "in use" | "unavailable";
  /** Why it is unavailable. */
  reason: string | null;
  /** The VM holding it (in use). */
  vmId: string | null;
}

/**
 * How VMs get GPUs, seen from the VM layer: whole GPUs passed through with vfio-pci, given at each
 * start and taken back when QEMU is gone. A host without GPUs (or a test) has none to give.
 */
export interface GuestGpus {
  /** Before a boot: `vm`'s GPUs given and bound to vfio-pci; what QEMU passes through. Throws GpuAllocationError. */
  prepare(vm: VmRecord): Promise<GpuSpec[]>;
  /** QEMU runs as `pid`: its threads pinned to the CPUs of its GPUs' NUMA node (a host with several). */
  started(vmId: string, pid: number): Promise<void>;
  /** QEMU is gone (or never started): the VM's GPUs are free again. */
  ended(vmId: string): Promise<void>;
  /** Agent start, after adoption: only VMs that run keep GPUs. */
  reconciled(running: ReadonlySet<string>): Promise<void>;
  /** Why a VM cannot have `count` GPUs here (now, with `vmId`'s own counted free), or null. */
  refusal(count: number, vmId?: string): Promise<string | null>;
  /** The host's GPUs and who holds them. */
  inventory(): Promise<GpuView[]>;
  /** How many GPUs can be passed through here, and how many of those are free (cheap: no nvidia-smi). */
  counts(): Promise<{ usable: number; free: number }>;
}

/** A host with no GPU to pass through: every ask for one is refused, as before GPUs existed. */
export class NoGpus implements GuestGpus {
  async prepare(vm: VmRecord): Promise<GpuSpec[]> {
    if (vm.spec.gpuCount > 0) throw new GpuAllocationError("allocate gpu failed: this host has no GPU free for passthrough");
    return [];
  }
  async started(): Promise<void> {}
  async ended(): Promise<void> {}
  async reconciled(): Promise<void> {}
  async refusal(count: number): Promise<string | null> {
    return count > 0 ? "allocate gpu failed: this host has no GPU free for passthrough" : null;
  }
  async inventory(): Promise<GpuView[]> {
    return [];
  }
  async counts(): Promise<{ usable: number; free: number }> {
    return { usable: 0, free: 0 };
  }
}

export interface PassthroughGpusOptions {
  sysfs: PciSysfs;
  pool: GpuPool;
  /** Give a VM's GPUs back to the host's driver when it stops (default: they stay on vfio-pci, ready for the next VM). */
  releaseToHost: boolean;
  /** nvidia-smi for model names (false: not run). */
  nvidiaSmi?: string | false;
  /** Pins a process's threads to a CPU list (default: taskset). */
  pin?: (pid: number, cpuList: string) => Promise<void>;
  log: Logger;
}

/**
 * GPUs by vfio passthrough (DBC's way: function 0 of a GPU's slot is one GPU, every function of the
 * slot goes with it). A VM's GPUs are chosen at each start (batu's choice, on one NUMA node where
 * it can), bound to vfio-pci, and freed when its QEMU is gone.
 */
export class PassthroughGpus implements GuestGpus {
  /** Binding and giving back run one at a time: a GPU is never bound for one VM while being given back from another. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The NUMA node each VM's GPUs of its last boot are on (null: they span nodes), for `started`. */
  private readonly numaNodeOf = new Map<string, number | null>();

  constructor(private readonly opts: PassthroughGpusOptions) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private units(withModels = false): Promise<GpuUnit[]> {
    return readGpuUnits(this.opts.sysfs, { nvidiaSmi: withModels ? (this.opts.nvidiaSmi ?? "nvidia-smi") : false });
  }

  prepare(vm: VmRecord): Promise<GpuSpec[]> {
    const count = vm.spec.gpuCount;
    if (count === 0) {
      // Its GPU count went to 0 since its last boot: nothing of an earlier one stays held.
      this.numaNodeOf.delete(vm.id);
      return this.serial(async () => (this.opts.pool.release(vm.id), []));
    }
    return this.serial(async () => {
      const units = await this.units();
      const addresses = this.opts.pool.allocate(vm.id, count, units);
      try {
        const chosen = addresses.map((a) => units.find((u) => u.address === a)!);
        await bindToVfio(this.opts.sysfs, chosen.flatMap((u) => u.functions));
        const nodes = new Set(chosen.map((u) => u.numaNode));
        this.numaNodeOf.set(vm.id, nodes.size === 1 ? [...nodes][0]! : null);
        this.opts.log.info({ vm: vm.id, gpus: addresses }, "GPUs given to the VM");
        // DBC turns the ROM BAR off for Windows guests.
        return chosen.map((u) => ({ pciAddress: u.address, functions: u.functions.slice(1), ...(vm.spec.os === "windows" ? { romBar: false } : {}) }));
      } catch (e) {
        this.opts.pool.release(vm.id);
        throw e;
      }
    });
  }

  /**
   * DBC pins its VMs' CPUs; batu pins a GPU VM's QEMU to the NUMA node its GPUs are on (the pool puts
   * them on one where it can), so the guest's memory and vCPUs sit beside the GPUs' PCIe links.
   */
  async started(vmId: string, pid: number): Promise<void> {
    const node = this.numaNodeOf.get(vmId);
    if (node === undefined || node === null) return;
    const cpus = await numaCpus(this.opts.sysfs);
    if (cpus.size < 2) return;
    const list = cpus.get(node);
    if (!list) return;
    await (this.opts.pin ?? pinProcess)(pid, list);
    this.opts.log.info({ vm: vmId, numaNode: node, cpus: list }, "VM pinned to its GPUs' NUMA node");
  }

  ended(vmId: string): Promise<void> {
    return this.serial(async () => {
      this.numaNodeOf.delete(vmId);
      const held = this.opts.pool.heldBy(vmId);
      if (held.length === 0) return;
      // Given back to the host's driver first, freed after: no boot takes a GPU half way back.
      if (this.opts.releaseToHost) await this.giveBack(held);
      this.opts.pool.release(vmId);
      this.opts.log.info({ vm: vmId, gpus: held }, "GPUs free again");
    });
  }

  reconciled(running: ReadonlySet<string>): Promise<void> {
    return this.serial(async () => {
      const stale = [...this.opts.pool.holders()].filter(([, vmId]) => !running.has(vmId)).map(([a]) => a);
      if (stale.length === 0) return;
      if (this.opts.releaseToHost) await this.giveBack(stale);
      this.opts.pool.retain(running);
      this.opts.log.info({ gpus: stale }, "GPUs of VMs that no longer run freed");
    });
  }

  async refusal(count: number, vmId?: string): Promise<string | null> {
    if (count === 0) return null;
    const units = await this.units();
    const holders = this.opts.pool.holders();
    const usable = units.filter((u) => u.unavailable === null);
    const free = usable.filter((u) => !holders.has(u.address) || holders.get(u.address) === vmId);
    if (free.length >= count) return null;
    return `allocate gpu failed: ${count} asked, ${free.length} of the host's ${usable.length} usable GPU${usable.length === 1 ? "" : "s"} free`;
  }

  async inventory(): Promise<GpuView[]> {
    const holders = this.opts.pool.holders();
    return (await this.units(true)).map((u) => ({
      address: u.address,
      vendor: u.vendor,
      model: u.model,
      memoryMiB: u.memoryMiB,
      numaNode: u.numaNode,
      state: u.unavailable !== null ? "unavailable" : holders.has(u.address) ? "in use" : "free",
      reason: u.unavailable,
      vmId: holders.get(u.address) ?? null,
    }));
  }

  async counts(): Promise<{ usable: number; free: number }> {
    const holders = this.opts.pool.holders();
    const usable = (await this.units()).filter((u) => u.unavailable === null);
    return { usable: usable.length, free: usable.filter((u) => !holders.has(u.address)).length };
  }

  private async giveBack(addresses: string[]): Promise<void> {
    const units = await this.units();
    const functions = units.filter((u) => addresses.includes(u.address)).flatMap((u) => u.functions);
    await releaseFromVfio(this.opts.sysfs, functions).catch((e: unknown) => this.opts.log.warn({ err: e, gpus: addresses }, "GPUs not given back to the host's driver"));
  }
}
