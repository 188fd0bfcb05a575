import type { HostConfig } from "../api/host.js";
import { saveHostConfig } from "../config/host-files.js";

/**
 * `conf/host_config.json` as the group service keeps it: read once at start, then changed only here,
 * the file first (atomically) and the copy in memory after, so a failed write changes nothing.
 */
export class HostConfigStore {
  constructor(
    private readonly confDir: string,
    private config: HostConfig,
  ) {}

  /** The configuration in force. */
  get current(): HostConfig {
    return this.config;
  }

  /** Writes `next` to host_config.json, then puts it in force. Throws (nothing changed) when the write fails. */
  save(next: HostConfig): void {
    saveHostConfig(this.confDir, next);
    this.config = next;
  }
}
