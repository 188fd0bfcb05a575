import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";

export interface Operation {
  id: string;
  /** The VM it acts on (its id on this host). */
  vmId: string;
  /** The id the VM's owner knows it by. */
  taskId: string;
  action: string;
  state: "running" | "done" | "failed";
  error: string | null;
  /** How far it is, 0…1, for an operation that copies data (a snapshot); null when it says nothing. */
  progress: number | null;
  startedAt: string;
  endedAt: string | null;
}

/** Tells how far an operation is (0…1). */
export type ProgressReporter = (fraction: number) => void;

/**
 * Long operations by id (kept in memory, the last 1,000), so a client can follow one without polling
 * a task; every change (progress, end) is also told to `onUpdate` listeners (the event stream).
 */
export class Operations {
  private readonly ops = new Map<string, Operation>();
  private readonly updates = new EventEmitter();

  constructor() {
    // One listener per open event stream.
    this.updates.setMaxListeners(0);
  }

  begin(vm: { id: string; taskId: string }, action: string): Operation {
    const op: Operation = {
      id: `op-${randomBytes(8).toString("hex")}`,
      vmId: vm.id,
      taskId: vm.taskId,
      action,
      state: "running",
      error: null,
      progress: null,
      startedAt: new Date().toISOString(),
      endedAt: null,
    };
    this.ops.set(op.id, op);
    if (this.ops.size > 1000) this.ops.delete(this.ops.keys().next().value!);
    return op;
  }

  end(op: Operation, error?: unknown): void {
    op.state = error === undefined ? "done" : "failed";
    op.error = error === undefined ? null : error instanceof Error ? error.message : String(error);
    op.endedAt = new Date().toISOString();
    if (op.state === "done" && op.progress !== null) op.progress = 1;
    this.updates.emit("update", op);
  }

  /**
   * A reporter of `op`'s progress: a change is kept and told to listeners when it moves by a whole
   * percent (a copy reports far more often than anyone needs to hear).
   */
  reporter(op: Operation): ProgressReporter {
    return (fraction) => {
      const f = Math.max(0, Math.min(1, fraction));
      if (op.state !== "running" || (op.progress !== null && Math.floor(f * 100) <= Math.floor(op.progress * 100))) return;
      op.progress = f;
      this.updates.emit("update", op);
    };
  }

  /** Calls `listener` on each progress or end of any operation; returns the unsubscribe. */
  onUpdate(listener: (op: Readonly<Operation>) => void): () => void {
    this.updates.on("update", listener);
    return () => this.updates.off("update", listener);
  }

  get(id: string): Operation | undefined {
    return this.ops.get(id);
  }

  /** Ties a promise to an operation record. */
  track<T>(op: Operation, work: Promise<T>): Promise<T> {
    work.then(
      () => this.end(op),
      (e: unknown) => this.end(op, e),
    );
    return work;
  }
}
