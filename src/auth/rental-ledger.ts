import { RentalError } from "./errors.js";
import type { RentalItem } from "../api/host-rent.js";
import { prepared, type Db } from "../store/db.js";
import type { VersionedMemo } from "../store/versioned-memo.js";
import { VersionedTable } from "../store/versioned-table.js";
import { renterFromSpec, RenterSpecError, type RenterIdentity, type RenterSpec } from "./renter.js";

export type RentalState = "active" | "expired" | "revoked";

/**
 * What a grant gives its renter on the node: `gpus` null is the whole node (its only renter);
 * a number, that many of its GPUs (DBC's renting by GPU: several renters share the node). The
 * others cap what the renter's VMs there may hold in all; null: no cap of the grant's own.
 */
export interface RentalLimits {
  gpus: number | null;
  cpuCores: number | null;
  memGib: number | null;
  diskGib: number | null;
  /** Caps on each of the renter's VMs (its disks' I/O, its network both ways); null: the operator's default. */
  diskIops: number | null;
  /** MB/s (10^6 bytes) of disk reads and writes together. */
  diskMBps: number | null;
  /** Megabits per second each way. */
  netMbit: number | null;
}

export const WHOLE_NODE: RentalLimits = Object.freeze({ gpus: null, cpuCores: null, memGib: null, diskGib: null, diskIops: null, diskMBps: null, netMbit: null });

/** One grant of the ledger: a node (or some of its GPUs) rented to a renter until a time, unless revoked first. */
export interface Rental {
  id: number;
  /** 64 lower-case hex: DBC's node id. */
  nodeId: string;
  renter: RenterIdentity;
  /** ISO 8601 UTC times. */
  grantedAt: string;
  until: string;
  revokedAt: string | null;
  limits: RentalLimits;
}

export type RevokeTarget = { id: number } | { nodeId: string; renter: RenterSpec };

interface Row {
  id: number;
  node_id: string;
  renter_id: string;
  kind: "wallet" | "multisig";
  wallets_json: string;
  threshold: number | null;
  granted_at: string;
  until: string;
  revoked_at: string | null;
  gpus: number | null;
  cpu_cores: number | null;
  mem_gib: number | null;
  disk_gib: number | null;
  disk_iops: number | null;
  disk_mbps: number | null;
  net_mbit: number | null;
}

const NODE_ID = /^[0-9a-f]{64}$/;

/** A grant's end in SQL: its revocation when that came first, else its `until` (ISO text compares as time). */
const GRANT_END = "CASE WHEN revoked_at IS NOT NULL AND revoked_at < until THEN revoked_at ELSE until END";

/** Renter id → when its use of one node ends or ended (ISO 8601 UTC): `RentalLedger.termsOf`. */
export type RentalTerms = Map<string, string>;

/** What a grant gives its renter besides its end: what a member needs to serve the renter's direct calls. */
export interface GrantTerms {
  limits: RentalLimits;
  /** A multisig renter's wallets (whose nonces a member keeps refused); absent for a wallet renter. */
  wallets?: string[];
}

/** Renter id → what its latest grant of one node gives: `RentalLedger.grantsOf`. */
export type RentalGrants = Map<string, GrantTerms>;

/** How many renters' terms of one node are kept and sent (a node has one renter at a time). */
export const RENTAL_TERMS_MAX = 1000;

/** How many nodes' live grants a ledger keeps in memory (a master's group is a few hundred nodes). */
export const LIVE_GRANTS_MAX_NODES = 1024;

/** A rental nobody can change: the ledger hands the ones it keeps to every caller. */
function frozen(r: Rental): Rental {
  if (r.renter.kind === "multisig") Object.freeze(r.renter.wallets);
  Object.freeze(r.renter);
  Object.freeze(r.limits);
  return Object.freeze(r);
}

/** One node's grants that were neither revoked nor over at `from`, newest first. */
interface LiveGrants {
  from: string;
  rentals: readonly Rental[];
}

function toRental(r: Row): Rental {
  const wallets = JSON.parse(r.wallets_json) as string[];
  const renter: RenterIdentity =
    r.kind === "wallet"
      ? { kind: "wallet", renterId: r.renter_id, wallet: wallets[0] ?? "" }
      : { kind: "multisig", renterId: r.renter_id, wallets, threshold: r.threshold ?? 0 };
  const limits = { gpus: r.gpus, cpuCores: r.cpu_cores, memGib: r.mem_gib, diskGib: r.disk_gib, diskIops: r.disk_iops, diskMBps: r.disk_mbps, netMbit: r.net_mbit };
  return { id: r.id, nodeId: r.node_id, renter, grantedAt: r.granted_at, until: r.until, revokedAt: r.revoked_at, limits };
}

/** A rental's state at `now`: revoked wins; else active until `until`, expired after. */
export function rentalState(rental: Rental, now: Date): RentalState {
  if (rental.revokedAt !== null) return "revoked";
  return rental.until > now.toISOString() ? "active" : "expired";
}

/** A rental as the host API shows it (`/common/rent/*`), with its state at `now`. */
export function rentalItem(r: Rental, now: Date): RentalItem {
  return {
    id: r.id,
    node_id: r.nodeId,
    renter: r.renter.renterId,
    ...(r.renter.kind === "wallet"
      ? { wallet: r.renter.wallet }
      : { multisig_accounts: { wallets: r.renter.wallets, threshold: r.renter.threshold } }),
    granted_at: r.grantedAt,
    until: r.until,
    revoked_at: r.revokedAt,
    state: rentalState(r, now),
    gpus: r.limits.gpus,
    cpu_cores: r.limits.cpuCores,
    mem_gib: r.limits.memGib,
    disk_gib: r.limits.diskGib,
    disk_iops: r.limits.diskIops,
    disk_mbps: r.limits.diskMBps,
    net_mbit: r.limits.netMbit,
  };
}

function nodeIdOf(nodeId: string): string {
  const id = nodeId.toLowerCase();
  if (!NODE_ID.test(id)) throw new RentalError("invalid", "node_id: must be 64 hex characters (the node's public key)");
  return id;
}

function renterOf(spec: RenterSpec): RenterIdentity {
  try {
    return renterFromSpec(spec);
  } catch (e) {
    if (e instanceof RenterSpecError) throw new RentalError("invalid", e.message);
    throw e;
  }
}

/**
 * The master's rental ledger, in place of DBC's chain: the operator grants a renter a node until a
 * time. A node is `rented` while one of its grants is active, else `online`. One renter per node at
 * a time: granting an actively rented node to its renter again moves `until`; to another renter is
 * refused. Unknown node ids are accepted (the node may join later). Throws RentalError.
 */
export class RentalLedger {
  // Every renter call checks its node's rental: kept per node while the rentals table is unchanged.
  private readonly live: VersionedMemo<LiveGrants>;
  /** Each node's rental terms, shared by every caller: nobody changes the Map it is given. */
  private readonly terms: VersionedMemo<RentalTerms>;
  /** What each renter's latest grant of a node gives, shared as `terms` is. */
  private readonly grants: VersionedMemo<RentalGrants>;
  /** Every write to rentals goes through here, so that `live` never answers from before it. */
  private readonly rentals: VersionedTable;

  private readonly listeners = new Set<() => void>();

  constructor(private readonly db: Db) {
    this.rentals = new VersionedTable(db, "rentals");
    this.live = this.rentals.cache(LIVE_GRANTS_MAX_NODES);
    this.terms = this.rentals.cache(LIVE_GRANTS_MAX_NODES);
    this.grants = this.rentals.cache(LIVE_GRANTS_MAX_NODES);
  }

  /** Calls `listener` after each grant or revocation through this ledger. */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  /**
   * Grants `nodeId` (the whole node, or `limits.gpus` of its GPUs) to the renter until `until` (after
   * `now`); returns the new or changed rental. The whole node goes to one renter at a time; GPUs go
   * to several, as long as they add up to no more than `nodeGpus` (the node's GPUs, where known).
   * Granting the node to its renter again moves `until` and changes what it gives only in the
   * limits given (an extension keeps the rest).
   */
  grant(nodeId: string, spec: RenterSpec, until: Date, now: Date = new Date(), given: Partial<RentalLimits> = {}, nodeGpus?: number): Rental {
    const node = nodeIdOf(nodeId);
    const renter = renterOf(spec);
    if (Number.isNaN(until.getTime())) throw new RentalError("invalid", "until: is not a time");
    if (until.getTime() <= now.getTime()) throw new RentalError("invalid", "until: must be in the future");
    const checked = { gpus: given.gpus, cpu_cores: given.cpuCores, mem_gib: given.memGib, disk_gib: given.diskGib, disk_iops: given.diskIops, disk_mbps: given.diskMBps, net_mbit: given.netMbit };
    for (const [field, v] of Object.entries(checked)) {
      if (v !== undefined && v !== null && (!Number.isInteger(v) || v < 1)) throw new RentalError("invalid", `${field}: must be a whole number of at least 1`);
    }
    const grantIn = this.db.transaction((): Rental => {
      const actives = this.activeRentals(node, now);
      const active = actives.find((r) => r.renter.renterId === renter.renterId);
      const limits: RentalLimits = { ...(active?.limits ?? WHOLE_NODE), ...given };
      const others = actives.filter((r) => r.renter.renterId !== renter.renterId);
      const whole = others.find((r) => r.limits.gpus === null) ?? (limits.gpus === null ? others[0] : undefined);
      if (whole) {
        throw new RentalError(
          "rented",
          `node_id: node ${node} is rented to ${whole.renter.renterId} until ${whole.until} (rental ${whole.id}${whole.limits.gpus === null ? "" : `, ${whole.limits.gpus} GPUs`}); revoke it first`,
        );
      }
      if (limits.gpus !== null && nodeGpus !== undefined) {
        const taken = others.reduce((n, r) => n + (r.limits.gpus ?? 0), 0);
        if (taken + limits.gpus > nodeGpus) {
          throw new RentalError("rented", `gpus: node ${node} has ${nodeGpus} GPUs, ${taken} of them rented to others: ${nodeGpus - taken} left`);
        }
      }
      if (active) {
        prepared(this.db, "UPDATE rentals SET until = ?, gpus = ?, cpu_cores = ?, mem_gib = ?, disk_gib = ?, disk_iops = ?, disk_mbps = ?, net_mbit = ? WHERE id = ?").run(
          until.toISOString(),
          limits.gpus,
          limits.cpuCores,
          limits.memGib,
          limits.diskGib,
          limits.diskIops,
          limits.diskMBps,
          limits.netMbit,
          active.id,
        );
        return this.get(active.id)!;
      }
      const wallets = renter.kind === "wallet" ? [renter.wallet] : renter.wallets;
      const info = prepared(
        this.db,
        `INSERT INTO rentals (node_id, renter_id, kind, wallets_json, threshold, granted_at, until, gpus, cpu_cores, mem_gib, disk_gib, disk_iops, disk_mbps, net_mbit)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        node,
        renter.renterId,
        renter.kind,
        JSON.stringify(wallets),
        renter.kind === "multisig" ? renter.threshold : null,
        now.toISOString(),
        until.toISOString(),
        limits.gpus,
        limits.cpuCores,
        limits.memGib,
        limits.diskGib,
        limits.diskIops,
        limits.diskMBps,
        limits.netMbit,
      );
      return this.get(Number(info.lastInsertRowid))!;
    });
    const rental = this.rentals.write(grantIn);
    this.changed();
    return rental;
  }

  get(id: number): Rental | undefined {
    const row = prepared(this.db, "SELECT * FROM rentals WHERE id = ?").get(id) as Row | undefined;
    return row ? toRental(row) : undefined;
  }

  /** Every grant, oldest first, optionally of one node and/or in one state at `now`. */
  list(filter: { nodeId?: string; state?: RentalState } = {}, now: Date = new Date()): Rental[] {
    const rows = (
      filter.nodeId === undefined
        ? prepared(this.db, "SELECT * FROM rentals ORDER BY id").all()
        : prepared(this.db, "SELECT * FROM rentals WHERE node_id = ? ORDER BY id").all(filter.nodeId.toLowerCase())
    ) as Row[];
    const all = rows.map(toRental);
    return filter.state === undefined ? all : all.filter((r) => rentalState(r, now) === filter.state);
  }

  /** Ends a rental now: by id, or the active rental of a node to a renter. Revoking twice is harmless. */
  revoke(target: RevokeTarget, now: Date = new Date()): Rental {
    let rental: Rental | undefined;
    if ("id" in target) {
      rental = this.get(target.id);
      if (!rental) throw new RentalError("not_found", `id: no such rental: ${target.id}`);
    } else {
      const node = nodeIdOf(target.nodeId);
      const renter = renterOf(target.renter);
      rental = this.rentalOf(node, renter.renterId, now);
      if (!rental) {
        throw new RentalError("not_found", `no active rental of node ${node} to ${renter.renterId}`);
      }
    }
    if (rental.revokedAt === null) {
      const id = rental.id;
      this.rentals.write(() => prepared(this.db, "UPDATE rentals SET revoked_at = ? WHERE id = ?").run(now.toISOString(), id));
      this.changed();
    }
    return this.get(rental.id)!;
  }

  /** The node's active rentals at `now` (grants neither revoked nor over), newest first: one per renter. */
  activeRentals(nodeId: string, now: Date = new Date()): readonly Rental[] {
    const node = nodeId.toLowerCase();
    const at = now.toISOString();
    const live = this.live.get(node, () => ({ from: at, rentals: this.liveGrants(node, at) }));
    // Grants over by `from` are not kept: for an earlier time (a caller's own clock) ask the store.
    if (at < live.from) return this.liveGrants(node, at);
    return live.rentals.filter((r) => r.until > at);
  }

  /** The node's newest active rental at `now`, if it is rented. */
  activeRental(nodeId: string, now: Date = new Date()): Rental | undefined {
    return this.activeRentals(nodeId, now)[0];
  }

  /** `renterId`'s active rental of the node at `now`, if it rents it (the whole node, or some GPUs). */
  rentalOf(nodeId: string, renterId: string, now: Date = new Date()): Rental | undefined {
    return this.activeRentals(nodeId, now).find((r) => r.renter.renterId === renterId);
  }

  private liveGrants(node: string, at: string): readonly Rental[] {
    const sql = "SELECT * FROM rentals WHERE node_id = ? AND revoked_at IS NULL AND until > ? ORDER BY id DESC";
    return Object.freeze((prepared(this.db, sql).all(node, at) as Row[]).map((r) => frozen(toRental(r))));
  }

  /** DBC's machine state of a node: `rented` while one of its grants is active, else `online`. */
  nodeState(nodeId: string, now: Date = new Date()): "rented" | "online" {
    return this.activeRental(nodeId, now) ? "rented" : "online";
  }

  /**
   * When each renter's use of `nodeId` ends or ended: the latest end of its grants of the node (a
   * revocation ends a grant early). A time after now means the renter rents the node now. At most
   * `limit` renters, latest ends first; a renter that never had the node is absent.
   */
  termsOf(nodeId: string, limit = RENTAL_TERMS_MAX): RentalTerms {
    // Asked at each member's heartbeat: kept while the rentals table is unchanged (the same Map then).
    if (limit === RENTAL_TERMS_MAX) return this.terms.get(nodeId.toLowerCase(), () => this.readTerms(nodeId, limit));
    return this.readTerms(nodeId, limit);
  }

  private readTerms(nodeId: string, limit: number): RentalTerms {
    const sql = `SELECT renter_id, MAX(${GRANT_END}) AS ends_at FROM rentals WHERE node_id = ?
                 GROUP BY renter_id ORDER BY ends_at DESC LIMIT ?`;
    const rows = prepared(this.db, sql).all(nodeId.toLowerCase(), limit) as Array<{ renter_id: string; ends_at: string }>;
    return new Map(rows.map((r) => [r.renter_id, r.ends_at]));
  }

  /**
   * What each renter's latest grant of `nodeId` gives (its limits; a multisig renter's wallets too):
   * what a member needs, besides `termsOf`, to serve its renters' direct calls.
   */
  grantsOf(nodeId: string): RentalGrants {
    const node = nodeId.toLowerCase();
    return this.grants.get(node, () => {
      const sql = "SELECT * FROM rentals WHERE id IN (SELECT MAX(id) FROM rentals WHERE node_id = ? GROUP BY renter_id)";
      const rentals = (prepared(this.db, sql).all(node) as Row[]).map(toRental);
      return new Map(rentals.map((r) => [r.renter.renterId, { limits: r.limits, ...(r.renter.kind === "multisig" ? { wallets: r.renter.wallets } : {}) }]));
    });
  }

  /** The ids of the renters with an active rental of `nodeId` at `now`. */
  activeRenterIds(nodeId: string, now: Date = new Date()): Set<string> {
    return new Set(this.activeRentals(nodeId, now).map((r) => r.renter.renterId));
  }

  /** The wallets of every grant that is active at `since` or ended after it (multisig: each wallet of the set). */
  walletsRentingSince(since: Date): Set<string> {
    const sql = `SELECT DISTINCT wallets_json FROM rentals WHERE ${GRANT_END} > ?`;
    const rows = prepared(this.db, sql).all(since.toISOString()) as Array<{ wallets_json: string }>;
    return new Set(rows.flatMap((r) => JSON.parse(r.wallets_json) as string[]));
  }

  /** The active rentals of a renter at `now` (the nodes it may use). */
  activeRentalsOf(renterId: string, now: Date = new Date()): Rental[] {
    const sql = "SELECT * FROM rentals WHERE renter_id = ? AND revoked_at IS NULL AND until > ? ORDER BY id";
    const rows = prepared(this.db, sql).all(renterId, now.toISOString()) as Row[];
    return rows.map(toRental);
  }
}
