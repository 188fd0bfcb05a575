import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ExecError } from "../../lib/exec.js";
import { buildQemuArgv } from "./argv.js";
import { isQemuAlive, killQemu, procState, readPidFile, startQemu, waitForExit } from "./process.js";
import { makeTempDir, minimalSpec, qemuAvailable, QemuTestJanitor } from "./testing.js";

const janitor = new QemuTestJanitor();
afterEach(() => janitor.cleanup());

/** Writes a fake /proc/<pid> with the given argv and state. */
async function fakeProc(root: string, pid: number, argv: string[], state = "S"): Promise<void> {
  await mkdir(join(root, String(pid)), { recursive: true });
  await writeFile(join(root, String(pid), "cmdline"), `${argv.join("\0")}\0`);
  await writeFile(join(root, String(pid), "stat"), `${pid} (qemu-system-x86) ${state} 1 ${pid} ${pid} 0 -1 4194368 0 0`);
}

describe("process helpers", () => {
  it("reads the state letter even when the comm holds spaces and parentheses", () => {
    expect(procState("42 (CPU 0/TCG) R 1 2 3")).toBe("R");
    expect(procState("42 (a) b) Z 1 2")).toBe("Z");
  });

  it("isQemuAlive matches the runDir's QMP socket, not a recycled pid, not a zombie", async () => {
    const root = janitor.dir(await makeTempDir());
    const argv = ["qemu-system-x86_64", ...buildQemuArgv(minimalSpec("/run/batu/vms/a"))];
    await fakeProc(root, 100, argv);
    await fakeProc(root, 101, ["qemu-system-x86_64", ...buildQemuArgv(minimalSpec("/run/batu/vms/ab"))]);
    await fakeProc(root, 102, ["sleep", "1000"]);
    await fakeProc(root, 103, argv, "Z");
    expect(await isQemuAlive(100, "/run/batu/vms/a", root)).toBe(true);
    expect(await isQemuAlive(101, "/run/batu/vms/a", root)).toBe(false);
    expect(await isQemuAlive(102, "/run/batu/vms/a", root)).toBe(false);
    expect(await isQemuAlive(103, "/run/batu/vms/a", root)).toBe(false);
    expect(await isQemuAlive(104, "/run/batu/vms/a", root)).toBe(false);
  });

  it("readPidFile returns null when there is none", async () => {
    const dir = janitor.dir(await makeTempDir());
    expect(await readPidFile(dir)).toBeNull();
    await writeFile(join(dir, "qemu.pid"), "1234\n");
    expect(await readPidFile(dir)).toBe(1234);
    await writeFile(join(dir, "qemu.pid"), "garbage");
    expect(await readPidFile(dir)).toBeNull();
  });

  it("killQemu and waitForExit on a child of ours", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    const pid = child.pid!;
    const exited = once(child, "exit");
    expect(await waitForExit(pid, 50)).toBe(false);
    expect(killQemu(pid, "SIGTERM")).toBe(true);
    expect(await waitForExit(pid, 2_000)).toBe(true);
    await exited;
    expect(killQemu(pid, "SIGTERM")).toBe(false);
  });
});

describe.runIf(qemuAvailable())("startQemu with real QEMU", () => {
  it("starts daemonized, writes its pid, and is recognised by its runDir", async () => {
    const dir = janitor.dir(await makeTempDir());
    const { pid, stderr } = await startQemu([...buildQemuArgv(minimalSpec(dir)), "-S"], dir);
    janitor.vm(pid, dir);
    expect(stderr).toBe("");
    expect(await readPidFile(dir)).toBe(pid);
    expect(await isQemuAlive(pid, dir)).toBe(true);
    expect(await isQemuAlive(pid, `${dir}x`)).toBe(false);
    expect(killQemu(pid, "SIGTERM")).toBe(true);
    expect(await waitForExit(pid, 5_000)).toBe(true);
    expect(await isQemuAlive(pid, dir)).toBe(false);
  });

  it("rejects with an ExecError carrying QEMU's stderr when QEMU refuses to start", async () => {
    const dir = janitor.dir(await makeTempDir());
    const spec = minimalSpec(dir, { disks: [{ id: "vda", path: join(dir, "missing.qcow2"), format: "qcow2" }] });
    const err = await startQemu(buildQemuArgv(spec), dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect((err as ExecError).exitCode).toBe(1);
    expect((err as ExecError).stderr).toContain("missing.qcow2");
    expect(await readPidFile(dir)).toBeNull();
  });
});
