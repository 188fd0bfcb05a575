/**
 * The group's service address: the one address renters and members use, held by whichever master
 * leads. The leader adds it to its LAN interface and announces it with gratuitous ARP (neighbours
 * then send to its MAC, not a dead master's), again every few seconds while it leads, since a
 * killed master's kernel may still answer for it; a master that stops leading, or starts, removes it.
 */
import { exec } from "../../lib/exec.js";
import type { Logger } from "../../lib/logger.js";

/** How often the leader repeats its gratuitous ARP. */
const ANNOUNCE_EVERY_MS = 5_000;

export class ServiceAddress {
  private announcer: NodeJS.Timeout | undefined;

  constructor(
    /** `ip/prefix`, e.g. 10.0.0.100/24. */
    private readonly cidr: string,
    private readonly iface: string,
    private readonly log: Logger,
  ) {}

  get ip(): string {
    return this.cidr.split("/")[0]!;
  }

  /** Adds the address (kept if there already) and announces it. */
  async take(): Promise<void> {
    await exec("ip", ["addr", "replace", this.cidr, "dev", this.iface], { timeoutMs: 5_000 });
    await this.announce();
    clearInterval(this.announcer);
    this.announcer = setInterval(() => void this.announce(), ANNOUNCE_EVERY_MS);
    this.announcer.unref();
    this.log.info({ address: this.cidr, iface: this.iface }, "group service address taken");
  }

  private async announce(): Promise<void> {
    // -U: unsolicited (gratuitous) ARP; -c 2 as keepalived does, in case one is lost.
    await exec("arping", ["-U", "-c", "2", "-w", "2", "-I", this.iface, this.ip], { timeoutMs: 5_000 }).catch((e: Error) =>
      this.log.warn({ err: e.message }, "group service address: gratuitous ARP failed"),
    );
  }

  /** Removes the address if this host has it (after a lost lead, and at start after a crash). */
  async release(): Promise<void> {
    clearInterval(this.announcer);
    this.announcer = undefined;
    await exec("ip", ["addr", "del", this.cidr, "dev", this.iface], { timeoutMs: 5_000 }).then(
      () => this.log.info({ address: this.cidr }, "group service address released"),
      () => undefined, // it was not there
    );
  }
}
