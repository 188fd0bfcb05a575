/**
 * The VM state machine, with DBC's status strings (reference §5.9). Pure: which action may run in
 * which status, what the VM shows while it runs, and where it ends on success or failure.
 */
export const VM_STATUSES = [
  "creating",
  "running",
  "closed",
  "starting",
  "being shutdown",
  "being poweroff",
  "restarting",
  "resetting",
  "deleting",
  "disk adding",
  "disk resizing",
  "disk deleting",
  "snapshot creating",
  "snapshot restoring",
  "create error",
  "start error",
  "shutdown error",
  "poweroff error",
  "restart error",
  "reset error",
  "delete error",
] as const;
export type VmStatus = (typeof VM_STATUSES)[number];

export const VM_ACTIONS = ["start", "shutdown", "poweroff", "restart", "reset", "delete"] as const;
export type VmAction = (typeof VM_ACTIONS)[number];

/** Statuses in which an operation is under way: no second one may start. */
export const TRANSITIONAL: ReadonlySet<VmStatus> = new Set<VmStatus>([
  "creating",
  "starting",
  "being shutdown",
  "being poweroff",
  "restarting",
  "resetting",
  "deleting",
  "disk adding",
  "disk resizing",
  "disk deleting",
  "snapshot creating",
  "snapshot restoring",
]);

const ERROR_STATUSES: ReadonlySet<VmStatus> = new Set(VM_STATUSES.filter((s) => s.endsWith(" error")));

export interface Transition {
  /** What the VM shows while the action runs. */
  during: VmStatus;
  /** Where it ends when the action succeeds (`null`: the VM is gone). */
  success: VmStatus | null;
  failure: VmStatus;
}

const TRANSITIONS: Record<VmAction, Transition> = {
  start: { during: "starting", success: "running", failure: "start error" },
  shutdown: { during: "being shutdown", success: "closed", failure: "shutdown error" },
  poweroff: { during: "being poweroff", success: "closed", failure: "poweroff error" },
  restart: { during: "restarting", success: "running", failure: "restart error" },
  reset: { during: "resetting", success: "running", failure: "reset error" },
  delete: { during: "deleting", success: null, failure: "delete error" },
};

/**
 * Whether `action` may run on a VM in `status` whose QEMU process is (or is not) alive.
 * Returns the transition, or the reason it is refused (DBC's wording: "task is <status>").
 */
export function planAction(action: VmAction, status: VmStatus, alive: boolean): Transition | { refused: string } {
  if (TRANSITIONAL.has(status)) return { refused: `vm is ${status}` };
  const settled = status === "running" || status === "closed" || ERROR_STATUSES.has(status);
  if (!settled) return { refused: `vm is ${status}` };
  switch (action) {
    case "start":
      if (alive) return { refused: "vm is running" };
      if (status === "create error") return { refused: "vm is create error: delete it and create it again" };
      break;
    case "shutdown":
    case "poweroff":
    case "reset":
      if (!alive) return { refused: "vm is closed" };
      break;
    case "restart":
    case "delete":
      break;
  }
  return TRANSITIONS[action];
}

/** Whether an operation failed and left the VM in this status. */
export function isErrorStatus(status: VmStatus): boolean {
  return ERROR_STATUSES.has(status);
}

/**
 * Whether a VM in this status holds the host's CPU, memory and GPUs: anything but shut off or failed.
 * The one definition that placement, node info and heartbeats count by.
 */
export function holdsResources(status: VmStatus): boolean {
  return status !== "closed" && !ERROR_STATUSES.has(status);
}
