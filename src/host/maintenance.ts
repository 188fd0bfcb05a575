/**
 * A host's maintenance state, set by its operator: cordoned, no VM starts here (no new task, no
 * stopped one started again) while those that run go on; drained, also every running VM shut down.
 * Kept in the data dir (`maintenance.json`), so it holds across agent restarts until uncordoned.
 * Renters are told: refusals say why, and the node's info carries it.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeJsonFileAtomic } from "../config/json-file.js";

export interface MaintenanceState {
  /** ISO 8601: since when no VM starts here. */
  since: string;
  /** The operator's words for renters (what is done, until when). */
  reason: string;
  /** Whether the running VMs were shut down too (drain), not only new ones refused (cordon). */
  drained: boolean;
}

export const MAINTENANCE_FILE = "maintenance.json";

export class HostMaintenance {
  private current: MaintenanceState | null;

  constructor(private readonly dataDir: string) {
    this.current = read(join(dataDir, MAINTENANCE_FILE));
  }

  get state(): MaintenanceState | null {
    return this.current;
  }

  /** Why no VM may start on this host now, or null. */
  refusal(): string | null {
    const s = this.current;
    return s && `node is under maintenance since ${s.since} (its operator cordoned it${s.reason ? `: ${s.reason}` : ""}): no task starts here until it is over`;
  }

  /** No VM starts here from now on; a second cordon keeps `since` and takes the new words. */
  cordon(reason: string, opts: { drained?: boolean; now?: Date } = {}): MaintenanceState {
    const since = this.current?.since ?? (opts.now ?? new Date()).toISOString();
    this.current = { since, reason, drained: opts.drained ?? this.current?.drained ?? false };
    writeJsonFileAtomic(join(this.dataDir, MAINTENANCE_FILE), this.current, 0o600);
    return this.current;
  }

  /** VMs may start here again (those a drain shut down stay shut down: their renters start them). */
  uncordon(): void {
    this.current = null;
    rmSync(join(this.dataDir, MAINTENANCE_FILE), { force: true });
  }
}

function read(path: string): MaintenanceState | null {
  if (!existsSync(path)) return null;
  try {
    const s = JSON.parse(readFileSync(path, "utf8")) as Partial<MaintenanceState>;
    if (typeof s.since === "string" && typeof s.reason === "string") return { since: s.since, reason: s.reason, drained: s.drained === true };
  } catch {
    // A file cut short: cordoned still (the safe side), with no words.
  }
  return { since: new Date(0).toISOString(), reason: "", drained: false };
}
