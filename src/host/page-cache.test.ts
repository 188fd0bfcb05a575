import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePageCache } from "./page-cache.js";

describe("freePageCache", () => {
  it("writes DBC's 3 to drop_caches only when the operator allows it", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "batu-dropcaches-")), "drop_caches");
    await writeFile(path, "untouched");
    expect(await freePageCache(false, path)).toBe("not allowed");
    expect(await readFile(path, "utf8")).toBe("untouched");
    expect(await freePageCache(true, path)).toBe("dropped");
    expect(await readFile(path, "utf8")).toBe("3\n");
  });
});
