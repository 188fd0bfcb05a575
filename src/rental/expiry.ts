/**
 * The end of a rental, as DBC's nodes enforce it: when a renter's rental of this node ends (runs out
 * or is revoked), its VMs are shut down; after the retention period they are deleted, unless the
 * renter rents the node again first. Each step is written in the VM's task log and record
 * (`rentalEnd`), so it shows in the VM's status and survives a restart; every step is idempotent,
 * so an agent killed half-way finishes the job at its next sweep.
 *
 * The terms (when each renter's use of this node ends) come from the ledger: this host's own, or on
 * a member its master's, as its heartbeats bring them (group/rental-terms.ts). A VM whose owner the
 * terms do not name is left alone: nothing is deleted without the ledger saying so.
 */
import type { RentalTerms } from "../auth/rental-ledger.js";
import type { Logger } from "../lib/logger.js";
import type { VmRecord, VmRentalEnd } from "../vm/repo.js";
import { TRANSITIONAL } from "../vm/state.js";

/** How long a VM outlives its renter's rental by default, shut down (DBC: 10 days). */
export const DEFAULT_RENTAL_RETENTION_MS = 10 * 24 * 3600 * 1000;

/** The longest the expiry sleeps between sweeps, even with nothing due (a missed poke, a clock jump). */
export const MAX_SWEEP_INTERVAL_MS = 60_000;

/** What the expiry needs of the VM layer. */
export interface ExpiringVms {
  list(): VmRecord[];
  /** Whether the VM's QEMU runs now. */
  isLive(id: string): boolean;
  /** Runs a lifecycle action to its end (shutdown: graceful, then power-off after the timeout). */
  act(id: string, action: "shutdown" | "delete"): Promise<unknown>;
  setRentalEnd(id: string, end: VmRentalEnd | null): void;
  /** A line of the VM's task log. */
  log(id: string, line: string): void;
}

export interface RentalExpiryOptions {
  vms: ExpiringVms;
  /** This node's rental terms now; undefined while unknown (a member before its master's first answer). */
  terms: () => RentalTerms | undefined;
  retentionMs: number;
  log: Logger;
  now?: () => Date;
}

/** What one VM needs now. */
type Step = { kind: "delete"; at: Date } | { kind: "shutdown"; endedAt: string } | { kind: "none" };

export class RentalExpiry {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly now: () => Date;

  constructor(private readonly opts: RentalExpiryOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** Sweeps now, then whenever something falls due (and at least every minute). */
  start(): void {
    this.stopped = false;
    this.poke();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The terms may have changed (a grant, a revocation, a master's answer): sweep soon. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  /** One sweep; a sweep asked for while one runs follows it. Resolves when the VMs are handled. */
  sweep(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.sweepOnce();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.sweep().finally(() => {
        if (!this.stopped) this.schedule(this.nextDelay());
      });
    }, delayMs);
    // The expiry never keeps the process alive: the HTTP server does.
    this.timer.unref();
  }

  /** How long until the next rental ends or the next retention runs out (capped). */
  private nextDelay(): number {
    const now = this.now().getTime();
    const terms = this.opts.terms();
    let next = now + MAX_SWEEP_INTERVAL_MS;
    if (terms) {
      // Every renter's end, with or without VMs now: a VM may be created before it.
      for (const endsAt of terms.values()) {
        const end = Date.parse(endsAt);
        if (end > now) next = Math.min(next, end);
      }
      for (const vm of this.opts.vms.list()) {
        if (vm.rentalEnd) next = Math.min(next, Math.max(now, Date.parse(vm.rentalEnd.endedAt) + this.opts.retentionMs));
      }
    }
    // A little after the due time: a timer may fire a hair early.
    return Math.max(0, next - now) + 20;
  }

  private async sweepOnce(): Promise<void> {
    const terms = this.opts.terms();
    if (!terms) return;
    const now = this.now();
    const work: Promise<void>[] = [];
    for (const vm of this.opts.vms.list()) {
      const step = this.stepFor(vm, terms, now);
      if (step.kind === "none") continue;
      work.push(this.take(vm, step).catch((e: unknown) => this.opts.log.warn({ vm: vm.id, err: e }, `rental expiry: ${step.kind} failed; retried at the next sweep`)));
    }
    await Promise.all(work);
  }

  /** Decides what `vm` needs, recording a rental end the first time it is seen (or its renewal). */
  private stepFor(vm: VmRecord, terms: RentalTerms, now: Date): Step {
    const endsAt = vm.owner === null ? undefined : terms.get(vm.owner);
    if (endsAt === undefined) return { kind: "none" };
    if (endsAt > now.toISOString()) {
      if (vm.rentalEnd) {
        this.opts.vms.setRentalEnd(vm.id, null);
        this.opts.vms.log(vm.id, `rented again until ${endsAt}: the VM is kept`);
        this.opts.log.info({ vm: vm.id, until: endsAt }, "rental renewed: VM kept");
      }
      return { kind: "none" };
    }
    const deleteAt = new Date(Date.parse(endsAt) + this.opts.retentionMs);
    let end = vm.rentalEnd;
    if (end?.endedAt !== endsAt) {
      end = { endedAt: endsAt, stoppedAt: null };
      this.opts.vms.setRentalEnd(vm.id, end);
      this.opts.vms.log(
        vm.id,
        `rental ended at ${endsAt}: the VM is shut down, and deleted at ${deleteAt.toISOString()} unless its renter rents this node again`,
      );
      this.opts.log.info({ vm: vm.id, owner: vm.owner, endedAt: endsAt, deleteAt: deleteAt.toISOString() }, "rental ended");
    }
    if (now >= deleteAt) return TRANSITIONAL.has(vm.status) ? { kind: "none" } : { kind: "delete", at: deleteAt };
    if (end.stoppedAt === null && !TRANSITIONAL.has(vm.status)) return { kind: "shutdown", endedAt: endsAt };
    return { kind: "none" };
  }

  private async take(vm: VmRecord, step: Exclude<Step, { kind: "none" }>): Promise<void> {
    if (step.kind === "delete") {
      this.opts.log.info({ vm: vm.id, owner: vm.owner, retentionEnded: step.at.toISOString() }, "rental retention over: deleting the VM");
      this.opts.vms.log(vm.id, "rental retention over: deleting the VM");
      await this.opts.vms.act(vm.id, "delete");
      return;
    }
    // Shut down once: the operator may start it again for the renter's data, and it stays up.
    if (this.opts.vms.isLive(vm.id)) await this.opts.vms.act(vm.id, "shutdown");
    this.opts.vms.setRentalEnd(vm.id, { endedAt: step.endedAt, stoppedAt: this.now().toISOString() });
  }
}
