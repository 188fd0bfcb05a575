import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { AcceleratorChoice } from "../hypervisor/accel.js";
import { readHostInfo, type HostInfo } from "../host/host-info.js";
import type { GpuView } from "./guest-gpus.js";
import type { VmRecord } from "./repo.js";
import { committed, freeCapacity, type HostCapacity } from "./resources.js";

const g = (bytes: number) => `${Math.round((bytes / 2 ** 30) * 100) / 100}G`;
const pct = (part: number, whole: number) => `${whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0}%`;

/**
 * What a node tells renters about itself: DBC's `mining_nodes` fields (all strings, as DBC sends
 * them) with real values read from the host, plus what DBC lacks: GPU models, the accelerator in
 * use, and the capacity still free for new tasks.
 */
export async function nodeInfo(opts: {
  version: string;
  dataDir: string;
  imageDirs: readonly string[];
  accel: AcceleratorChoice;
  vms: readonly VmRecord[];
  /** The host's capacity as placement counts it (overcommit, memory reserve), from this reading of the host. */
  capacityOf: (host: HostInfo) => HostCapacity;
  state: "online" | "rented";
  /** The address the group knows this node by (ip:port); shown masked, as DBC does. */
  address: string;
  /** The host's GPUs and their state (which VM holds one is not shown here: renters see every node). */
  gpus: () => Promise<GpuView[]>;
}) {
  const host = await readHostInfo(opts.dataDir);
  const gpus = await opts.gpus().catch(() => [] as GpuView[]);
  const usable = gpus.filter((x) => x.state !== "unavailable");
  const inUse = gpus.filter((x) => x.state === "in use");
  // What a new task could still get: the same sums and limits as the fit check at creation.
  const free = freeCapacity(opts.capacityOf(host), committed(opts.vms));
  const images = new Map<string, number>();
  for (const dir of opts.imageDirs) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) if (n.endsWith(".qcow2") && !images.has(n)) images.set(n, statSync(join(dir, n)).size);
  }
  return {
    version: opts.version,
    node_type: "1",
    ip: maskedIp(opts.address),
    state: opts.state,
    os: `${host.os} ${host.kernel}`,
    cpu: {
      type: host.cpu.model,
      hz: host.cpu.mhz ? `${Math.round(host.cpu.mhz)}MHz` : "",
      cores: String(host.cpu.threads),
      used_usage: pct(host.loadAverage[0] ?? 0, host.cpu.threads),
      physical_cpus: String(host.cpu.sockets ?? 1),
    },
    gpu: {
      gpu_count: String(usable.length),
      gpu_used: String(inUse.length),
      models: gpus.map((x) => ({ pci: x.address, vendor: x.vendor, model: x.model, memory_mib: x.memoryMiB, numa_node: x.numaNode, state: x.state, ...(x.reason ? { reason: x.reason } : {}) })),
    },
    mem: {
      size: g(host.memory.totalBytes),
      free: g(host.memory.availableBytes),
      used_usage: pct(host.memory.totalBytes - host.memory.availableBytes, host.memory.totalBytes),
    },
    disk_system: { type: host.disk.kind ?? "", size: g(host.disk.totalBytes) },
    disk_data: [
      {
        path: host.disk.path,
        type: host.disk.kind ?? "",
        size: g(host.disk.totalBytes),
        free: g(host.disk.freeBytes),
        used_usage: pct(host.disk.totalBytes - host.disk.freeBytes, host.disk.totalBytes),
      },
    ],
    images: [...images].map(([image_name, size]) => ({ image_name, image_size: g(size) })),
    accelerator: { type: opts.accel.accel, cpu_model: opts.accel.cpuModel, reason: opts.accel.reason },
    free: {
      cpu_cores: String(free.vcpus),
      mem: g(free.memoryBytes),
      disk: g(free.diskBytes),
      gpu_count: String(usable.length - inUse.length),
    },
  };
}

/** DBC's `hide_ip_addr`: the first and third parts of an IPv4 address hidden (`*.206.*.168`). */
export function maskedIp(address: string): string {
  const ip = address.replace(/:\d+$/, "");
  const parts = ip.split(".");
  return parts.length === 4 ? `*.${parts[1]}.*.${parts[3]}` : "*";
}
