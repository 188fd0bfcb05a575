import { open } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Makes what was written to `path` durable (fsync), off the event loop: before a rename marks a
 * file complete, its bytes must be on disk, or a power cut could leave a complete-looking file of
 * garbage.
 */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename or creation in the folder of `path` durable (fsync of the folder). */
export async function syncParentDir(path: string): Promise<void> {
  await syncFile(dirname(path));
}
