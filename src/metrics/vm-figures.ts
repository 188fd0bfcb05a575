import type { VmStats } from "../api/host-vm.js";
import type { VmRecord } from "../vm/repo.js";

/** How long one scrape waits for the VMs' live figures in all: QMP calls run in parallel, a stuck QEMU costs this at most. */
export const VM_FIGURES_BOUND_MS = 2_000;

/** What a scrape needs of the VM layer: the VMs, which run, and their counters (read as /common/vm/stats reads them). */
export interface VmFigureSource {
  list(): VmRecord[];
  isLive(id: string): boolean;
  counters(vm: VmRecord): Promise<VmStats>;
}

export interface VmFigures {
  /** Every VM of the host, by status. */
  records: VmRecord[];
  /** The figures of the running VMs that answered within the bound. */
  figures: VmStats[];
  /** Running VMs whose figures did not come in time, or failed. */
  unread: number;
}

/**
 * Reads every running VM's counters (QMP and /proc) in parallel, giving up on those not answered
 * within `boundMs`: a scrape takes that long at most, whatever one VM's QEMU does.
 */
export async function readVmFigures(source: VmFigureSource, boundMs = VM_FIGURES_BOUND_MS): Promise<VmFigures> {
  const records = source.list();
  const live = records.filter((vm) => source.isLive(vm.id));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), boundMs);
  });
  try {
    const read = await Promise.all(live.map((vm) => Promise.race([source.counters(vm).catch(() => undefined), late])));
    const figures = read.filter((f): f is VmStats => f !== undefined);
    return { records, figures, unread: live.length - figures.length };
  } finally {
    clearTimeout(timer);
  }
}
