import { randomBytes } from "node:crypto";
import { secretEquals } from "../../auth/secrets.js";

/** How long a console ticket may wait for its WebSocket: long enough for a page to open it, no longer. */
export const TICKET_TTL_MS = 30_000;

interface Pending {
  vmId: string;
  secret: string;
  expiresAt: number;
}

/**
 * Single-use, short-lived tickets for the console's WebSocket. A browser cannot put an Authorization
 * header on a WebSocket, so an authenticated POST issues a ticket and the upgrade presents it in the
 * query. A ticket is `<id>.<secret>`: the id finds it (a map lookup), the secret is compared in
 * constant time, so the lookup's timing reveals nothing of the secret. Redeemed or not, a ticket is
 * gone after its first use or its expiry.
 */
export class ConsoleTickets {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly ttlMs = TICKET_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A fresh ticket for VM `vmId`'s console. */
  issue(vmId: string): string {
    this.sweep();
    const id = randomBytes(9).toString("base64url");
    const secret = randomBytes(24).toString("base64url");
    this.pending.set(id, { vmId, secret, expiresAt: this.now() + this.ttlMs });
    return `${id}.${secret}`;
  }

  /** The VM a valid ticket is for, consuming it; undefined for an unknown, expired, used or malformed one. */
  redeem(ticket: unknown): string | undefined {
    if (typeof ticket !== "string" || ticket.length > 128) return undefined;
    const dot = ticket.indexOf(".");
    if (dot <= 0) return undefined;
    const id = ticket.slice(0, dot);
    const held = this.pending.get(id);
    if (!held || !secretEquals(ticket.slice(dot + 1), held.secret)) return undefined;
    this.pending.delete(id);
    return held.expiresAt > this.now() ? held.vmId : undefined;
  }

  /** Tickets waiting now (expired ones are dropped first). */
  get size(): number {
    this.sweep();
    return this.pending.size;
  }

  /** Drops expired tickets, so those never redeemed do not pile up. */
  private sweep(): void {
    const now = this.now();
    for (const [id, t] of this.pending) if (t.expiresAt <= now) this.pending.delete(id);
  }
}
