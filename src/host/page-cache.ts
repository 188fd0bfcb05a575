import { writeFile } from "node:fs/promises";

/** Where Linux takes the order to drop clean caches. */
export const DROP_CACHES_PATH = "/proc/sys/vm/drop_caches";

/**
 * DBC's `mining_nodes/free_memory` (`echo 3 > /proc/sys/vm/drop_caches`): drops the host's clean
 * page cache, dentries and inodes, only when the operator allows it (`allow_drop_caches` in
 * conf/config.json); otherwise touches nothing. Either way the renter is answered as DBC answers.
 * Dropping caches costs every process on the host its warm file cache: the operator decides.
 */
export async function freePageCache(allowed: boolean, path = DROP_CACHES_PATH): Promise<"dropped" | "not allowed"> {
  if (!allowed) return "not allowed";
  await writeFile(path, "3\n");
  return "dropped";
}
