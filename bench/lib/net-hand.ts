import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { probeAccelerator } from "../../src/hypervisor/accel.js";
import { buildQemuArgv } from "../../src/hypervisor/qemu/argv.js";
import { runPaths, type QemuSpec } from "../../src/hypervisor/qemu/spec.js";
import { macFor } from "../../src/network/mac.js";
import { USER_NIC_ID } from "../../src/vm/qemu-spec.js";
import type { DemoImage } from "./bare-qemu.js";
import { runInput, type Netns } from "./netns.js";
import { run, stopPid, waitForMarker } from "./proc.js";

/**
 * The least batu could do for a port forward on a bridged network, made by hand inside namespace
 * `ns`: a bridge with the gateway address, one tap on it, IPv4 forwarding, and one nftables table
 * of ours with a single DNAT rule per forwarded port (no masquerade, no filter chain, no isolated
 * port, no dnsmasq: the guest's address is on its kernel command line). The guest is the demo image
 * booted with the QEMU argv batu would give it (buildQemuArgv), on that tap.
 */
export const HAND_SUBNET = { gateway: "10.123.0.1", guest: "10.123.0.2", prefix: 24 };
export const HAND_TABLE = "bench_hand";

export interface HandVm {
  qemuPid: number;
  argv: string[];
  runDir: string;
  password: string;
  readyMs: number;
}

/** Bridge, tap, forwarding and the DNAT table: `forwards` maps host port → guest port (tcp). */
export async function handNetwork(ns: Netns, forwards: ReadonlyArray<{ hostPort: number; guestPort: number }>): Promise<string> {
  await ns.ip("link", "add", "br0", "type", "bridge");
  await ns.ip("addr", "add", `${HAND_SUBNET.gateway}/${HAND_SUBNET.prefix}`, "dev", "br0");
  await ns.ip("link", "set", "br0", "up");
  await ns.ip("tuntap", "add", "dev", "tap0", "mode", "tap");
  await ns.ip("link", "set", "tap0", "master", "br0", "up");
  // Inside the namespace: its own net.ipv4.ip_forward.
  await ns.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  const ruleset = [
    `table ip ${HAND_TABLE} {`,
    "\tchain prerouting {",
    "\t\ttype nat hook prerouting priority dstnat; policy accept;",
    ...forwards.map((f) => `\t\ttcp dport ${f.hostPort} dnat to ${HAND_SUBNET.guest}:${f.guestPort}`),
    "\t}",
    "}",
    "",
  ].join("\n");
  const r = await runInput([...ns.wrap, "nft", "-f", "-"], { input: ruleset, timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`nft -f (hand-made table): ${r.stderr}`);
  return ruleset;
}

/** The demo guest on tap0 of `ns`, booted like batu boots it, its address on the kernel command line. */
export async function bootHandVm(ns: Netns, image: DemoImage, root: string, timeoutMs: number): Promise<HandVm> {
  const name = "bench-hand";
  const runDir = join(root, name);
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  const accel = await probeAccelerator();
  const { gateway, guest, prefix } = HAND_SUBNET;
  const spec: QemuSpec = {
    name,
    runDir,
    accel: accel.accel,
    cpuModel: accel.cpuModel,
    machine: "pc",
    cpu: { sockets: 1, cores: 1, threads: 1 },
    memoryMiB: 256,
    firmware: { kind: "bios" },
    // What batu's BridgedNetwork.prepare appends for a guest at .2 of its /24.
    kernel: { kernelPath: image.kernel, initrdPath: image.initrd, cmdline: [image.cmdline, `batu.ip=${guest}/${prefix}`, `batu.gw=${gateway}`, `batu.dns=${gateway}`].join(" ") },
    disks: [{ id: "vda", path: join(runDir, "vda.qcow2"), format: "qcow2" }],
    nics: [{ kind: "tap", id: USER_NIC_ID, mac: macFor(name), ifname: "tap0" }],
    // Inside the namespace: any display number is free.
    vnc: { listenAddr: "127.0.0.1", port: 5900, passwordFile: join(runDir, "vnc.secret") },
    fwCfg: [
      { name: "opt/batu/password", file: join(runDir, "fwcfg-password") },
      { name: "opt/batu/hostname", file: join(runDir, "fwcfg-hostname") },
    ],
    guestAgent: true,
  };
  const argv = buildQemuArgv(spec);
  const password = "Bench_password16";
  const t0 = performance.now();
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image.disk, "-F", "qcow2", spec.disks[0]!.path]);
  await writeFile(spec.vnc!.passwordFile, "benchpw1", { mode: 0o600 });
  await writeFile(spec.fwCfg![0]!.file, password, { mode: 0o600 });
  // The same host name as the agents' VMs (nickname "bench"): the same index.html, byte for byte.
  await writeFile(spec.fwCfg![1]!.file, "bench", { mode: 0o600 });
  // -daemonize: ip netns exec returns once QEMU runs, in the namespace.
  await ns.exec(["qemu-system-x86_64", ...argv], 60_000);
  const qemuPid = Number((await readFile(runPaths(runDir).pidFile, "utf8")).trim());
  await waitForMarker(runPaths(runDir).serialLog, image.marker, { timeoutMs });
  return { qemuPid, argv: ["qemu-system-x86_64", ...argv], runDir, password, readyMs: performance.now() - t0 };
}

export async function stopHandVm(vm: { qemuPid: number; runDir: string }): Promise<void> {
  await stopPid(vm.qemuPid, vm.runDir);
}
