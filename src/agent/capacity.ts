import type { MemberCapacity } from "../api/host.js";
import { readHostInfo } from "../host/host-info.js";
import { listGpus } from "../host/gpu-inventory.js";
import type { VmRecord } from "../vm/repo.js";
import { holdsResources } from "../vm/state.js";

/** What a member reports in each heartbeat: the host's size and what its VMs leave free. */
export async function memberCapacity(opts: { dataDir: string; vms: () => VmRecord[]; version: string }): Promise<MemberCapacity> {
  const [info, gpus] = await Promise.all([
    readHostInfo(opts.dataDir),
    listGpus({ onWarning: () => undefined }).catch(() => []),
  ]);
  const vms = opts.vms();
  const gpusHeld = vms.filter((vm) => holdsResources(vm.status)).reduce((n, vm) => n + vm.spec.gpuCount, 0);
  return {
    cpu_threads: info.cpu.threads,
    memory_total_bytes: info.memory.totalBytes,
    memory_available_bytes: info.memory.availableBytes,
    disk_total_bytes: info.disk.totalBytes,
    disk_free_bytes: info.disk.freeBytes,
    gpu_total: gpus.length,
    gpu_free: Math.max(0, gpus.length - gpusHeld),
    vm_count: vms.length,
    version: opts.version,
  };
}
