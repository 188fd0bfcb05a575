import { describe, expect, it } from "vitest";
import { mkdtempSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageCatalog } from "./images.js";

function shipped() {
  const root = mkdtempSync(join(tmpdir(), "batu-img-"));
  const cache = join(root, "cache");
  const built = join(root, "built");
  mkdirSync(cache);
  mkdirSync(built);
  writeFileSync(join(built, "demo.qcow2"), "v1-image");
  writeFileSync(join(built, "demo.vmlinuz"), "v1-kernel");
  writeFileSync(
    join(built, "demo.json"),
    JSON.stringify({ name: "demo.qcow2", format: "qcow2", boot: "kernel", kernel: "demo.vmlinuz", cmdline: "console=ttyS0", ready_marker: "UP" }),
  );
  return { cache, built, catalog: new ImageCatalog([cache, built]) };
}

describe("ImageCatalog", () => {
  it("refuses names as DBC does", () => {
    const { catalog } = shipped();
    expect(() => catalog.resolve("")).toThrow("image_name is empty");
    expect(() => catalog.resolve("demo.img")).toThrow("'image_name' extension name is invalid");
    expect(() => catalog.resolve("../x.qcow2")).toThrow(/invalid/);
    expect(() => catalog.resolve("none.qcow2")).toThrow("'image_name' is not exist: none.qcow2");
  });

  it("reads the sidecar: kernel boot and ready marker", () => {
    const { catalog, built } = shipped();
    expect(catalog.resolve("demo.qcow2")).toMatchObject({
      path: join(built, "demo.qcow2"),
      kernel: { kernelPath: join(built, "demo.vmlinuz"), cmdline: "console=ttyS0" },
      readyMarker: "UP",
    });
  });

  it("imports a shipped image into the cache, which a rebuild of the shipped one leaves alone", async () => {
    const { catalog, cache, built } = shipped();
    await catalog.importShipped("demo.qcow2");
    expect(catalog.resolve("demo.qcow2").path).toBe(join(cache, "demo.qcow2"));
    expect(catalog.resolve("demo.qcow2").kernel?.kernelPath).toBe(join(cache, "demo.vmlinuz"));
    // A rebuild replaces outputs by rename, as images/demo/build.sh does.
    writeFileSync(join(built, "new.tmp"), "v2-image");
    renameSync(join(built, "new.tmp"), join(built, "demo.qcow2"));
    expect(readFileSync(join(cache, "demo.qcow2"), "utf8")).toBe("v1-image");
    expect(statSync(join(cache, "demo.qcow2")).nlink).toBe(1);
    await catalog.importShipped("demo.qcow2"); // already there: nothing changes
    expect(readFileSync(join(cache, "demo.qcow2"), "utf8")).toBe("v1-image");
  });
});
