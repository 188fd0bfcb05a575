import type { MemberCapacity } from "../api/host.js";
import { readHostInfo } from "../host/host-info.js";
import type { VmRecord } from "../vm/repo.js";

/** What a member reports in each heartbeat: the host's size and what its VMs leave free. */
export async function memberCapacity(opts: {
  dataDir: string;
  vms: () => VmRecord[];
  version: string;
  /** The GPUs that can be passed through here, and how many of them no VM holds. */
  gpus: () => Promise<{ usable: number; free: number }>;
}): Promise<MemberCapacity> {
  const [info, gpus] = await Promise.all([readHostInfo(opts.dataDir), opts.gpus().catch(() => ({ usable: 0, free: 0 }))]);
  return {
    cpu_threads: info.cpu.threads,
    memory_total_bytes: info.memory.totalBytes,
    memory_available_bytes: info.memory.availableBytes,
    disk_total_bytes: info.disk.totalBytes,
    disk_free_bytes: info.disk.freeBytes,
    gpu_total: gpus.usable,
    gpu_free: gpus.free,
    vm_count: opts.vms().length,
    version: opts.version,
  };
}
