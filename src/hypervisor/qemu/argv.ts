import { assertNever } from "../../lib/assert-never.js";
import {
  HOTPLUG_PORT_PREFIX,
  diskFileNodeName,
  diskNodeName,
  GUEST_AGENT_CHARDEV,
  nicNetdevId,
  runPaths,
  TCG_TB_SIZE_MIB,
  type NicSpec,
  type QemuSpec,
} from "./spec.js";
import { validateSpec } from "./validate.js";

/** QEMU option values are comma-separated; a literal comma is written ",,". */
const esc = (value: string): string => value.replaceAll(",", ",,");

/**
 * Builds QEMU's arguments (without the program name) for a spec. Pure: same spec, same argv.
 * Throws QemuSpecError when the spec is unsound. The VM is daemonized, its QMP socket, pid file and
 * serial log live in spec.runDir, and nothing secret is ever on the command line.
 */
export function buildQemuArgv(spec: QemuSpec): string[] {
  validateSpec(spec);
  const paths = runPaths(spec.runDir);
  const argv: string[] = [
    "-name", `guest=${esc(spec.name)},debug-threads=on`,
    "-no-user-config",
    "-nodefaults",
    "-display", "none",
    // Seccomp: deny obsolete syscalls and resource-control calls. spawn=deny and
    // elevateprivileges=deny both make QEMU 7.2 fail with -daemonize.
    "-sandbox", "on,obsolete=deny,resourcecontrol=deny",
    ...machineArgs(spec),
    "-accel", spec.accel === "tcg" ? `tcg,tb-size=${TCG_TB_SIZE_MIB}` : "kvm",
    "-cpu", spec.cpuModel,
    "-smp", smpArg(spec),
    "-m", String(spec.memoryMiB),
  ];

  if (spec.kernel) {
    // -kernel, -initrd and -append take their value verbatim (no option parsing, no escaping).
    argv.push("-kernel", spec.kernel.kernelPath);
    if (spec.kernel.initrdPath !== undefined) argv.push("-initrd", spec.kernel.initrdPath);
    argv.push("-append", spec.kernel.cmdline);
  }

  spec.disks.forEach((disk, i) => {
    const file = diskFileNodeName(disk.id);
    const node = diskNodeName(disk.id);
    const boot = i === 0 && !spec.kernel ? ",bootindex=1" : "";
    argv.push(
      "-blockdev", `driver=file,node-name=${file},filename=${esc(disk.path)},discard=unmap`,
      "-blockdev", `driver=${disk.format},node-name=${node},file=${file},discard=unmap`,
      "-device", `virtio-blk-pci,id=${disk.id},drive=${node}${boot}`,
    );
  });

  if (spec.seedDisk) {
    argv.push(
      "-device", "virtio-scsi-pci,id=seedscsi",
      "-blockdev", `driver=file,node-name=seed-file,filename=${esc(spec.seedDisk)},read-only=on`,
      "-blockdev", "driver=raw,node-name=seed,file=seed-file,read-only=on",
      "-device", "scsi-hd,bus=seedscsi.0,drive=seed",
    );
  }

  for (const nic of spec.nics) {
    argv.push(
      "-netdev", netdevArg(nic),
      "-device", `virtio-net-pci,id=${nic.id},netdev=${nicNetdevId(nic.id)},mac=${nic.mac}${nic.kind === "tap" && nic.mtu ? `,host_mtu=${nic.mtu}` : ""}`,
    );
  }

  if (spec.vnc) {
    const display = spec.vnc.port - 5900;
    argv.push(
      // The password reaches QEMU through a file, never argv (argv is world-readable in /proc).
      "-object", `secret,id=vncsec0,file=${esc(spec.vnc.passwordFile)},format=raw`,
      "-vnc", `${spec.vnc.listenAddr}:${display},password-secret=vncsec0`,
      // -nodefaults removed the VGA card; VNC needs one to show anything.
      "-device", "VGA,id=video0",
    );
  }

  for (const entry of spec.fwCfg ?? []) {
    argv.push("-fw_cfg", `name=${entry.name},file=${esc(entry.file)}`);
  }

  if (spec.guestAgent) {
    argv.push(
      // Like QMP a socket QEMU serves; wait=off: QEMU starts whether or not anyone is connected.
      "-chardev", `socket,id=${GUEST_AGENT_CHARDEV},path=${esc(paths.guestAgentSocket)},server=on,wait=off`,
      "-device", "virtio-serial-pci,id=vserial0",
      "-device", `virtserialport,bus=vserial0.0,chardev=${GUEST_AGENT_CHARDEV},name=org.qemu.guest_agent.0`,
    );
  }

  // Every pcie-root-port needs its own chassis number.
  let chassis = 0;
  (spec.gpus ?? []).forEach((gpu, i) => {
    const rom = gpu.romBar === false ? ",rombar=0" : "";
    const others = gpu.functions ?? [];
    if (spec.machine === "q35") {
      // GPU drivers expect a PCIe link: each GPU on a root port of its own, its slot's functions
      // beside it as functions of one device (as on the host), so the guest driver finds its audio.
      argv.push("-device", `pcie-root-port,id=gpuport${i},bus=pcie.0,chassis=${++chassis}`);
      argv.push("-device", `vfio-pci,id=hostdev${i},host=${gpu.pciAddress},bus=gpuport${i},addr=00.0${others.length ? ",multifunction=on" : ""}${rom}`);
      others.forEach((f, j) => argv.push("-device", `vfio-pci,id=hostdev${i}f${j + 1},host=${f},bus=gpuport${i},addr=00.${f.slice(-1)}`));
    } else {
      argv.push("-device", `vfio-pci,id=hostdev${i},host=${gpu.pciAddress}${rom}`);
      others.forEach((f, j) => argv.push("-device", `vfio-pci,id=hostdev${i}f${j + 1},host=${f}`));
    }
  });

  for (let i = 0; i < (spec.hotplugPorts ?? 0); i++) {
    argv.push("-device", `pcie-root-port,id=${HOTPLUG_PORT_PREFIX}${i},bus=pcie.0,chassis=${++chassis}`);
  }

  argv.push(
    // append=on: the agent starts the log afresh at each boot and rotates it past a cap (vm/serial-log.ts).
    "-chardev", `file,id=serial0,path=${esc(paths.serialLog)},append=on`,
    "-serial", "chardev:serial0",
    "-chardev", `socket,id=qmp,path=${esc(paths.qmpSocket)},server=on,wait=off`,
    "-mon", "chardev=qmp,mode=control",
    "-pidfile", paths.pidFile,
    "-daemonize",
  );
  return argv;
}

function machineArgs(spec: QemuSpec): string[] {
  const fw = spec.firmware;
  switch (fw.kind) {
    case "bios":
      return ["-machine", spec.machine];
    case "uefi":
      return [
        "-blockdev", `driver=file,node-name=ovmf-code,filename=${esc(fw.codePath)},read-only=on`,
        "-blockdev", `driver=file,node-name=ovmf-vars,filename=${esc(fw.varsPath)}`,
        "-machine", `${spec.machine},pflash0=ovmf-code,pflash1=ovmf-vars`,
      ];
    default:
      return assertNever(fw);
  }
}

function smpArg(spec: QemuSpec): string {
  const { sockets, cores, threads } = spec.cpu;
  return `cpus=${sockets * cores * threads},sockets=${sockets},cores=${cores},threads=${threads}`;
}

function netdevArg(nic: NicSpec): string {
  const id = nicNetdevId(nic.id);
  switch (nic.kind) {
    case "user":
      // An empty guest address means the guest's DHCP lease (10.0.2.15).
      return [`user,id=${id}`, ...nic.hostForwards.map((f) => `hostfwd=${f.proto}:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`)].join(",");
    case "mcast":
      return `socket,id=${id},mcast=${nic.group}`;
    case "tap":
      return `tap,id=${id},ifname=${nic.ifname},script=no,downscript=no`;
    default:
      return assertNever(nic);
  }
}
