import type { Db } from "../store/db.js";
import { UsageLedger } from "../rental/usage.js";
import type { VmRepo } from "../vm/repo.js";
import { TRANSITIONAL, type VmStatus } from "../vm/state.js";
import type { Vms } from "../vm/vms.js";

/** Statuses a VM has only once its QEMU is gone: its usage stretch ends. */
const QEMU_GONE: ReadonlySet<VmStatus> = new Set<VmStatus>(["closed", "create error", "start error"]);

/**
 * Usage records for billing (rental/usage.ts), kept from the VM layer's changes: a VM runs while it
 * has a QEMU (an adopted one included, whatever its status says), and stops when its status says
 * QEMU is gone or it is deleted. Call after the VM layer reconciled.
 */
export function startUsageRecords(db: Db, repo: VmRepo, vms: Vms): UsageLedger {
  const usage = new UsageLedger(db);
  usage.sync(repo.list().filter((v) => v.pid !== null));
  vms.queries.onChange((c) => {
    const vm = c.status === "deleted" ? undefined : repo.get(c.id);
    if (c.status === "deleted" || QEMU_GONE.has(c.status)) usage.stopped(c.id);
    else if (vm && vm.pid !== null && !TRANSITIONAL.has(c.status)) usage.running(vm);
  });
  return usage;
}
