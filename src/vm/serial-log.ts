import { copyFile, stat, truncate } from "node:fs/promises";

/**
 * A VM's console log past this size is rotated: the guest writes it without limit (a hostile one
 * as fast as it can), so each VM's console takes at most twice this on disk (the log and one
 * previous part, `<log>.1`).
 */
export const SERIAL_LOG_CAP_BYTES = 16 * 2 ** 20;

/**
 * Rotates the log at `path` when it is over `capBytes`: its content goes to `<path>.1` (replacing
 * the previous part) and the log starts again empty. QEMU appends to it (`append=on`), so its next
 * line lands at the new start; what it writes between the copy and the truncation is lost (a few
 * lines at most). Answers whether it rotated.
 */
export async function rotateSerialLog(path: string, capBytes = SERIAL_LOG_CAP_BYTES): Promise<boolean> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
  if (size <= capBytes) return false;
  await copyFile(path, `${path}.1`);
  await truncate(path, 0);
  return true;
}
