// Structural checks of the demo guest image built by images/demo/build.sh.
// The build is cached (a no-op when build/images/.demo-recipe-hash matches), so running it
// here is cheap after the first time; booting the image is tested by the VM engine tests.
import { describe, it, expect, beforeAll } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, openSync, readSync, closeSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(fileURLToPath(new URL(".", import.meta.url)), "..");
const recipeDir = join(repo, "images", "demo");
const outDir = join(repo, "build", "images");
const buildScript = join(recipeDir, "build.sh");

const READY_MARKER = "BATU-READY";
const CMDLINE = "console=ttyS0 root=/dev/vda rw quiet";

function runBuild(): { status: number | null; output: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync("bash", [buildScript], { cwd: repo, encoding: "utf8", timeout: 600_000 });
  return { status: r.status, output: `${r.stdout ?? ""}${r.stderr ?? ""}`, ms: Date.now() - t0 };
}

function head(path: string, length: number, position = 0): Buffer {
  const buf = Buffer.alloc(length);
  const fd = openSync(path, "r");
  try {
    readSync(fd, buf, 0, length, position);
  } finally {
    closeSync(fd);
  }
  return buf;
}

function readJson(name: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(readFileSync(join(outDir, name), "utf8"));
  expect(typeof parsed).toBe("object");
  expect(parsed).not.toBeNull();
  return parsed as Record<string, unknown>;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

/** The same hash as recipe_hash() in build.sh: sha256 over `sha256sum` lines of ./paths, sorted. */
function recipeHash(): string {
  const lines = filesUnder(recipeDir)
    .map((p) => `./${relative(recipeDir, p)}`)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((rel) => `${createHash("sha256").update(readFileSync(join(recipeDir, rel))).digest("hex")}  ${rel}\n`);
  return createHash("sha256").update(lines.join("")).digest("hex");
}

function expectQcow2(path: string): void {
  expect(existsSync(path), `${path} exists`).toBe(true);
  // qcow2 magic "QFI\xfb".
  expect(head(path, 4).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))).toBe(true);
  expect(statSync(path).size).toBeGreaterThan(1024 * 1024);
}

describe("demo guest image (images/demo/build.sh)", () => {
  beforeAll(() => {
    const r = runBuild();
    expect(r.status, r.output).toBe(0);
  }, 600_000);

  it("kernel-boot metadata has exactly the expected fields and points at existing files", () => {
    const meta = readJson("batu-demo.json");
    expect(Object.keys(meta).sort()).toEqual(
      ["boot", "cmdline", "format", "initrd", "kernel", "login_user", "name", "os", "ready_marker"].sort(),
    );
    expect(meta).toMatchObject({
      name: "batu-demo.qcow2",
      format: "qcow2",
      boot: "kernel",
      kernel: "batu-demo.vmlinuz",
      initrd: "batu-demo.initrd",
      cmdline: CMDLINE,
      ready_marker: READY_MARKER,
      login_user: "root",
    });
    expect(meta.os).toMatch(/^Debian \d+\.\d+\.\d+-\d+-cloud-amd64 \+ busybox$/);

    expectQcow2(join(outDir, String(meta.name)));
    const kernel = join(outDir, String(meta.kernel));
    expect(existsSync(kernel)).toBe(true);
    // x86 bzImage: "HdrS" at 0x202.
    expect(head(kernel, 4, 0x202).toString("latin1")).toBe("HdrS");
    const initrd = join(outDir, String(meta.initrd));
    expect(existsSync(initrd)).toBe(true);
    // gzip magic.
    expect(head(initrd, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(true);
    expect(statSync(initrd).size).toBeGreaterThan(100 * 1024);
  });

  it("BIOS-boot metadata has the same shape without kernel/initrd/cmdline", () => {
    const meta = readJson("batu-demo-bios.json");
    expect(Object.keys(meta).sort()).toEqual(["boot", "format", "login_user", "name", "os", "ready_marker"].sort());
    expect(meta).toMatchObject({
      name: "batu-demo-bios.qcow2",
      format: "qcow2",
      boot: "disk",
      ready_marker: READY_MARKER,
      login_user: "root",
    });
    expect(meta.os).toBe(readJson("batu-demo.json").os);
    expectQcow2(join(outDir, String(meta.name)));
  });

  it("records the recipe hash and skips an up-to-date build", () => {
    expect(readFileSync(join(outDir, ".demo-recipe-hash"), "utf8").trim()).toBe(recipeHash());
    const r = runBuild();
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain("up to date");
    expect(r.ms).toBeLessThan(5_000);
  });
});
