import { randomBytes } from "node:crypto";

export interface Operation {
  id: string;
  /** The VM it acts on (its id on this host). */
  vmId: string;
  /** The id the VM's owner knows it by. */
  taskId: string;
  action: string;
  state: "running" | "done" | "failed";
  error: string | null;
  startedAt: string;
  endedAt: string | null;
}

/** Long operations by id (kept in memory, the last 1,000), so a client can follow one without polling a task. */
export class Operations {
  private readonly ops = new Map<string, Operation>();

  begin(vm: { id: string; taskId: string }, action: string): Operation {
    const op: Operation = {
      id: `op-${randomBytes(8).toString("hex")}`,
      vmId: vm.id,
      taskId: vm.taskId,
      action,
      state: "running",
      error: null,
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
