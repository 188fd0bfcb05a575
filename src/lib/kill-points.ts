import { readFileSync, rmSync } from "node:fs";

/**
 * TEST-ONLY crash hook. The crash test (`test/crash.test.ts`) starts an agent with
 * `BATU_KILL_POINTS_FILE=<path>` and, right before an operation, writes a kill point's name into that
 * file; when the agent reaches `killPoint(<that name>)` it deletes the file (one shot) and SIGKILLs
 * itself at once: no `finally`, no undo, no flush, exactly like a power cut of the agent alone.
 * Arming by file, not by a fixed list in the environment, lets one agent process set up a VM and then
 * die at the step under test. Read once at load: with the variable unset (always, outside tests), a
 * kill point is a single comparison.
 */
const ARM_FILE = process.env.BATU_KILL_POINTS_FILE;

/**
 * Marks a step where an agent crash is interesting (between two changes that a restart must finish
 * or undo). Named `<domain>.<operation>.<step>`, e.g. `vm.create.after-insert`; a new operation
 * (disks, snapshots) adds its points and a case per point in the crash test.
 */
export function killPoint(name: string): void {
  if (ARM_FILE === undefined) return;
  let armed: string;
  try {
    armed = readFileSync(ARM_FILE, "utf8");
  } catch {
    return;
  }
  if (!armed.split(/[\s,]+/).includes(name)) return;
  rmSync(ARM_FILE, { force: true });
  process.kill(process.pid, "SIGKILL");
}
