import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, chown, copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Booted } from "./batu.js";
import type { DemoImage } from "./bare-qemu.js";
import type { Cleanup } from "./cleanup.js";
import { checkInterrupted, now, run, sleep, waitForMarker } from "./proc.js";

const LIBVIRTD = "/usr/sbin/libvirtd";
const VIRTLOGD = "/usr/sbin/virtlogd";
const URI = "qemu:///system";

export const virsh = (...args: string[]) => run("virsh", ["-c", URI, ...args], { timeoutMs: 120_000 });

export interface LibvirtSample {
  name: string;
  /** Before `qemu-img create` of the overlay. */
  t0: number;
  /** `virsh define` started (overlay made). */
  define: number;
  /** `virsh define` returned; `virsh start` begins. */
  defined: number;
  /** `virsh start` returned. */
  started: number;
  ready: number;
  readyUpperBound: boolean;
}

async function pidsNamed(comm: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if ((await readFile(`/proc/${name}/comm`, "utf8")).trim() === comm) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Installs libvirt when it is missing (apt, --no-install-recommends); returns the seconds it took,
 * 0 when it was there. Daemons the package scripts may have started are stopped (ours, by pid).
 */
export async function ensureLibvirtInstalled(log: (s: string) => void): Promise<number> {
  if (existsSync(LIBVIRTD) && existsSync(VIRTLOGD) && existsSync("/usr/bin/virsh")) return 0;
  log("libvirt is missing: apt-get install -y --no-install-recommends libvirt-daemon-system libvirt-clients ...");
  const before = new Set([...(await pidsNamed("libvirtd")), ...(await pidsNamed("virtlogd"))]);
  const t0 = Date.now();
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    run("apt-get", ["install", "-y", "--no-install-recommends", "libvirt-daemon-system", "libvirt-clients"], { timeoutMs: 600_000, env });
  try {
    await install();
  } catch {
    await run("apt-get", ["update"], { timeoutMs: 300_000, env });
    await install();
  }
  for (const pid of [...(await pidsNamed("libvirtd")), ...(await pidsNamed("virtlogd"))]) {
    if (before.has(pid)) continue;
    log(`stopping pid ${pid}, started by the package scripts`);
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // gone
    }
  }
  await sleep(500);
  return (Date.now() - t0) / 1000;
}

/**
 * libvirt for the baseline: /dev/kvm made usable by libvirt's qemu user (the notes' fix, undone at the
 * end), virtlogd and libvirtd started by hand unless already running (only ours are stopped), the
 * capability cache warmed. Every domain it defines is destroyed and undefined at the end.
 */
export class Libvirt {
  private seq = 0;
  private readonly names = new Set<string>();
  readonly tag = Math.random().toString(36).slice(2, 8);

  private constructor(
    private readonly root: string,
    private readonly image: DemoImage,
    /** false: a plain domain with libvirt's defaults (qemu64 CPU, 1 GiB TCG cache, USB, balloon). */
    private readonly matchBatu: boolean,
  ) {}

  static async start(root: string, demo: DemoImage, cleanup: Cleanup, log: (s: string) => void, matchBatu = true): Promise<Libvirt> {
    // The /dev/kvm fix: with mode 0600 root, every define takes ~48 s (capability cache invalidated).
    const kvm = await stat("/dev/kvm").catch(() => null);
    if (kvm && (kvm.mode & 0o777) !== 0o660) {
      const { stdout } = await run("getent", ["group", "kvm"]);
      const gid = Number(stdout.split(":")[2]);
      log(`/dev/kvm: mode ${(kvm.mode & 0o7777).toString(8)} ${kvm.uid}:${kvm.gid} → 0660 root:kvm (restored at the end)`);
      cleanup.add("restore /dev/kvm", async () => {
        await chown("/dev/kvm", kvm.uid, kvm.gid);
        await chmod("/dev/kvm", kvm.mode & 0o7777);
      });
      await chown("/dev/kvm", kvm.uid, gid);
      await chmod("/dev/kvm", 0o660);
    }
    for (const [comm, bin] of [["virtlogd", VIRTLOGD], ["libvirtd", LIBVIRTD]] as const) {
      if ((await pidsNamed(comm)).length) {
        log(`${comm} already runs: using it (not stopped at the end)`);
        continue;
      }
      const child = spawn(bin, [], { stdio: "ignore", detached: true }); // Ctrl-C reaches the bench only
      log(`started ${comm} (pid ${child.pid})`);
      cleanup.add(`stop ${comm} ${child.pid}`, () => stopChild(child));
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await virsh("version");
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(200);
      }
    }
    await virsh("domcapabilities", "--virttype", "qemu"); // fills the capability cache (not timed)
    const dir = join(root, "libvirt");
    await mkdir(dir, { recursive: true });
    // Own copies: libvirt relabels (chowns) the files its domains use; build/images stays untouched.
    const files = { disk: join(dir, "base.qcow2"), kernel: join(dir, "vmlinuz"), initrd: join(dir, "initrd") };
    await copyFile(demo.disk, files.disk);
    await copyFile(demo.kernel, files.kernel);
    await copyFile(demo.initrd, files.initrd);
    const lv = new Libvirt(dir, { ...demo, ...files }, matchBatu);
    cleanup.add("libvirt domains", () => lv.removeAll());
    return lv;
  }

  private xml(name: string, dir: string): string {
    const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;");
    return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${esc(this.image.kernel)}</kernel>
    <initrd>${esc(this.image.initrd)}</initrd>
    <cmdline>${esc(this.image.cmdline)}</cmdline>
  </os>
  <sysinfo type='fwcfg'>
    <entry name='opt/batu/password'>Bench_password16</entry>
    <entry name='opt/batu/hostname'>${name}</entry>
  </sysinfo>
  <features><acpi/>${this.matchBatu ? "<tcg><tb-cache unit='MiB'>32</tb-cache></tcg>" : ""}</features>
  ${this.matchBatu ? "<cpu mode='maximum' check='none'/>" : ""}
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='${esc(join(dir, "vda.qcow2"))}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'><model type='virtio'/></interface>
    <serial type='file'><source path='${esc(join(dir, "serial.log"))}'/><target port='0'/></serial>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1' passwd='benchpw1'/>
    <video><model type='vga'/></video>
    ${this.matchBatu ? "<controller type='usb' model='none'/><memballoon model='none'/>" : ""}
  </devices>
</domain>
`;
  }

  /** `virsh define` + `virsh start` of a fresh domain on a fresh overlay, until BATU-READY in its serial file. */
  async boot(opts: { timeoutMs: number }): Promise<Booted<LibvirtSample>> {
    checkInterrupted();
    const name = `batu-bench-${this.tag}-${++this.seq}`;
    const dir = join(this.root, name);
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o755);
    const xmlPath = join(dir, "domain.xml");
    await writeFile(xmlPath, this.xml(name, dir));
    this.names.add(name);
    const destroy = async () => {
      const d0 = now();
      await this.remove(name);
      return now() - d0;
    };
    try {
      const t0 = now();
      await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", this.image.disk, "-F", "qcow2", join(dir, "vda.qcow2")]);
      const define = now();
      await virsh("define", xmlPath);
      const defined = now();
      await virsh("start", name);
      const started = now();
      const r = await waitForMarker(join(dir, "serial.log"), this.image.marker, { timeoutMs: opts.timeoutMs });
      return { sample: { name, t0, define, defined, started, ready: r.at, readyUpperBound: r.firstLook }, destroy };
    } catch (e) {
      await destroy().catch(() => undefined);
      throw e;
    }
  }

  /** The QEMU command line libvirt ran for a domain (for the record). */
  async qemuArgv(name: string): Promise<string[] | null> {
    const pidFile = `/run/libvirt/qemu/${name}.pid`;
    try {
      const pid = (await readFile(pidFile, "utf8")).trim();
      return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").slice(0, -1);
    } catch {
      return null;
    }
  }

  private async remove(name: string): Promise<void> {
    await virsh("destroy", name).catch(() => undefined);
    await virsh("undefine", name).catch(() => undefined);
    await rm(join(this.root, name), { recursive: true, force: true });
    await rm(`/var/log/libvirt/qemu/${name}.log`, { force: true }); // libvirt's per-domain log
    this.names.delete(name);
  }

  /** Every domain this bench defined (also ones a failed run left behind, found by name). */
  async removeAll(): Promise<void> {
    try {
      const { stdout } = await virsh("list", "--all", "--name");
      for (const n of stdout.split("\n").map((s) => s.trim())) if (n.startsWith(`batu-bench-${this.tag}-`)) this.names.add(n);
    } catch {
      // libvirtd gone: the names we know are still removed
    }
    for (const n of [...this.names]) await this.remove(n);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(10_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}
