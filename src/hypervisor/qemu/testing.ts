import { accessSync, constants } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { isQemuAlive, killQemu, waitForExit, QEMU_BINARY } from "./process.js";
import type { QemuSpec } from "./spec.js";

/** Test helpers for code that runs real QEMU. Not used by the product. */

/** True when qemu-system-x86_64 is on PATH. */
export function qemuAvailable(binary = QEMU_BINARY): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A fresh short temp folder (unix socket paths must stay under 108 bytes). */
export function makeTempDir(prefix = "batu-hv-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** The smallest runnable spec: no disk, no NIC, TCG, 64 MiB. */
export function minimalSpec(runDir: string, overrides: Partial<QemuSpec> = {}): QemuSpec {
  return {
    name: "test-vm",
    runDir,
    accel: "tcg",
    cpuModel: "qemu64",
    machine: "pc",
    cpu: { sockets: 1, cores: 1, threads: 1 },
    memoryMiB: 64,
    firmware: { kind: "bios" },
    disks: [],
    nics: [],
    ...overrides,
  };
}

/**
 * Remembers the QEMUs and folders a test made and removes them afterwards, even on failure.
 * Kills only the pids it was given, and only while they are still that runDir's QEMU.
 */
export class QemuTestJanitor {
  private readonly vms: Array<{ pid: number; runDir: string }> = [];
  private readonly dirs: string[] = [];

  vm(pid: number, runDir: string): void {
    this.vms.push({ pid, runDir });
  }

  dir(path: string): string {
    this.dirs.push(path);
    return path;
  }

  async cleanup(): Promise<void> {
    for (const { pid, runDir } of this.vms.splice(0)) {
      if (await isQemuAlive(pid, runDir)) {
        killQemu(pid, "SIGKILL");
        await waitForExit(pid, 5_000);
      }
    }
    for (const d of this.dirs.splice(0)) await rm(d, { recursive: true, force: true });
  }
}
