import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { buildQemuArgv } from "../../src/hypervisor/qemu/argv.js";
import { runPaths, type QemuSpec } from "../../src/hypervisor/qemu/spec.js";
import { probeAccelerator, type AcceleratorChoice } from "../../src/hypervisor/accel.js";
import { macFor } from "../../src/vm/qemu-spec.js";
import type { Booted } from "./batu.js";
import { checkInterrupted, now, run, stopPid, waitForMarker } from "./proc.js";

/** The demo image as its sidecar describes it (build/images/batu-demo.json). */
export interface DemoImage {
  dir: string;
  disk: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  marker: string;
}

export async function loadDemoImage(dir: string): Promise<DemoImage> {
  const meta = JSON.parse(await readFile(join(dir, "batu-demo.json"), "utf8")) as Record<string, string>;
  if (meta.boot !== "kernel" || !meta.kernel || !meta.initrd || !meta.cmdline) throw new Error(`${dir}/batu-demo.json: not a kernel-boot image`);
  return {
    dir,
    disk: join(dir, meta.name ?? "batu-demo.qcow2"),
    kernel: join(dir, meta.kernel),
    initrd: join(dir, meta.initrd),
    cmdline: meta.cmdline,
    marker: meta.ready_marker ?? "BATU-READY",
  };
}

export interface BareSample {
  name: string;
  /** Before `qemu-img create` of the overlay. */
  t0: number;
  /** qemu-system-x86_64 spawned (overlay and fw_cfg/VNC files written). */
  spawn: number;
  /** QEMU's -daemonize parent exited: the machine is initialised and runs. */
  daemonized: number;
  ready: number;
  readyUpperBound: boolean;
}

const usedPorts = new Set<number>();
/** A TCP port ≥ `from` free on loopback now and not handed out before by this process. */
export async function freePortFrom(from: number): Promise<number> {
  for (let p = from; p < 65535; p++) {
    if (usedPorts.has(p)) continue;
    const ok = await new Promise<boolean>((r) => {
      const s = createServer();
      s.once("error", () => r(false));
      s.listen(p, "127.0.0.1", () => s.close(() => r(true)));
    });
    if (ok) {
      usedPorts.add(p);
      return p;
    }
  }
  throw new Error(`no free port from ${from}`);
}

/**
 * The guest started by hand: the QEMU argv batu would give it (src/hypervisor/qemu/argv.ts
 * buildQemuArgv on the spec batu's toQemuSpec makes), a linked-clone overlay like batu's, no agent.
 */
export class BareQemu {
  private accel: AcceleratorChoice | null = null;
  private seq = 0;

  constructor(
    private readonly root: string,
    private readonly image: DemoImage,
  ) {}

  async spec(name: string, runDir: string): Promise<QemuSpec> {
    this.accel ??= await probeAccelerator();
    return {
      name,
      runDir,
      accel: this.accel.accel,
      cpuModel: this.accel.cpuModel,
      machine: "pc",
      cpu: { sockets: 1, cores: 1, threads: 1 },
      memoryMiB: 256,
      firmware: { kind: "bios" },
      kernel: { kernelPath: this.image.kernel, initrdPath: this.image.initrd, cmdline: this.image.cmdline },
      disks: [{ id: "vda", path: join(runDir, "vda.qcow2"), format: "qcow2" }],
      nics: [{
        kind: "user", id: "net0", mac: macFor(name),
        hostForwards: [{ proto: "tcp", hostAddr: "127.0.0.1", hostPort: await freePortFrom(21000), guestPort: 22 }],
      }],
      vnc: { listenAddr: "127.0.0.1", port: await freePortFrom(6900), passwordFile: join(runDir, "vnc.secret") },
      fwCfg: [
        { name: "opt/batu/password", file: join(runDir, "fwcfg-password") },
        { name: "opt/batu/hostname", file: join(runDir, "fwcfg-hostname") },
      ],
    };
  }

  /** Overlay, QEMU spawned (daemonized, as batu does), BATU-READY in its serial log. */
  async boot(opts: { timeoutMs: number; onArgv?: (argv: string[]) => void }): Promise<Booted<BareSample>> {
    checkInterrupted();
    const name = `bareq${++this.seq}`;
    const runDir = join(this.root, name);
    const spec = await this.spec(name, runDir);
    const argv = buildQemuArgv(spec);
    opts.onArgv?.(argv);
    let pid: number | null = null;
    const destroy = async () => {
      const d0 = now();
      pid ??= await readPid(runDir);
      if (pid !== null) await stopPid(pid, runDir);
      await rm(runDir, { recursive: true, force: true });
      return now() - d0;
    };
    try {
      const t0 = now();
      await mkdir(runDir, { recursive: true, mode: 0o700 });
      await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", this.image.disk, "-F", "qcow2", spec.disks[0]!.path]);
      await writeFile(spec.vnc!.passwordFile, "benchpw1", { mode: 0o600 });
      await writeFile(spec.fwCfg![0]!.file, "Bench_password16", { mode: 0o600 });
      await writeFile(spec.fwCfg![1]!.file, name, { mode: 0o600 });
      const spawn = now();
      await run("qemu-system-x86_64", argv, { timeoutMs: 60_000 });
      const daemonized = now();
      pid = await readPid(runDir);
      if (pid === null) throw new Error(`${name}: QEMU wrote no pid file`);
      const r = await waitForMarker(runPaths(runDir).serialLog, this.image.marker, { timeoutMs: opts.timeoutMs });
      return { sample: { name, t0, spawn, daemonized, ready: r.at, readyUpperBound: r.firstLook }, destroy };
    } catch (e) {
      await destroy().catch(() => undefined);
      throw e;
    }
  }
}

async function readPid(runDir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(runPaths(runDir).pidFile, "utf8")).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Compares two QEMU command lines with what must differ blanked out (VM name, paths of its run
 * folder and image files, MAC, forwarded and VNC ports). Returns the differing positions, empty when
 * the two are the same invocation.
 */
export function argvDiff(a: readonly string[], b: readonly string[]): string[] {
  const norm = (argv: readonly string[]) =>
    argv.map((arg) =>
      arg
        .replace(/guest=[^,]+/, "guest=<name>")
        .replace(/\/[^,]*\/(vda\.qcow2|serial\.log|qmp\.sock|qemu\.pid|vnc\.secret|fwcfg-password|fwcfg-hostname)/g, "<run>/$1")
        .replace(/\/[^,]*\/(batu-demo\.[a-z0-9]+)/g, "<img>/$1")
        .replace(/mac=[0-9a-f:]+/, "mac=<mac>")
        .replace(/hostfwd=tcp:([0-9.]+):\d+-/, "hostfwd=tcp:$1:<port>-")
        .replace(/^(127\.0\.0\.1):\d+,/, "$1:<display>,"),
    );
  const x = norm(a.slice(a[0]?.startsWith("qemu-system") ? 1 : 0));
  const y = norm(b.slice(b[0]?.startsWith("qemu-system") ? 1 : 0));
  const diffs: string[] = [];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i]) diffs.push(`#${i}: ${x[i] ?? "(none)"} ≠ ${y[i] ?? "(none)"}`);
  }
  return diffs;
}
