import { isAbsolute } from "node:path";
import { runPaths, type QemuSpec } from "./spec.js";

/** A QemuSpec that QEMU would reject or misread; `field` names the offending part. */
export class QemuSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "QemuSpecError";
  }
}

/** QEMU's id rule (qemu/id.c): a letter, then letters, digits, '-', '.', '_'. */
const QEMU_ID = /^[A-Za-z][A-Za-z0-9._-]{0,62}$/;
const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const CPU_MODEL = /^[A-Za-z0-9][A-Za-z0-9_.,+=-]*$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const FW_CFG_NAME = /^opt\/[A-Za-z0-9_./-]+$/;
/** Linux sun_path is 108 bytes including the terminating NUL. */
const MAX_UNIX_SOCKET_PATH = 107;

export function isIPv4(addr: string): boolean {
  const parts = addr.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

const isPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;
const isPositiveInt = (n: number): boolean => Number.isInteger(n) && n >= 1;

function need(ok: boolean, field: string, message: string): void {
  if (!ok) throw new QemuSpecError(field, message);
}

function absolutePath(path: string, field: string): void {
  need(isAbsolute(path), field, "must be an absolute path");
  need(!/[\0\n]/.test(path), field, "must not contain NUL or newline");
}

/** Throws a QemuSpecError for the first problem found; returns nothing when the spec is sound. */
export function validateSpec(spec: QemuSpec): void {
  need(VM_NAME.test(spec.name), "name", "letters, digits, '.', '_', '-' only, at most 64");
  absolutePath(spec.runDir, "runDir");
  need(
    Buffer.byteLength(runPaths(spec.runDir).qmpSocket) <= MAX_UNIX_SOCKET_PATH,
    "runDir",
    `too long: the QMP socket path must fit in ${MAX_UNIX_SOCKET_PATH} bytes`,
  );
  need(CPU_MODEL.test(spec.cpuModel), "cpuModel", "not a CPU model name");
  const { sockets, cores, threads } = spec.cpu;
  need(isPositiveInt(sockets) && isPositiveInt(cores) && isPositiveInt(threads), "cpu", "sockets, cores, threads must be integers >= 1");
  need(sockets * cores * threads <= 255, "cpu", "at most 255 vCPUs");
  need(Number.isInteger(spec.memoryMiB) && spec.memoryMiB >= 16, "memoryMiB", "must be an integer >= 16");

  if (spec.firmware.kind === "uefi") {
    absolutePath(spec.firmware.codePath, "firmware.codePath");
    absolutePath(spec.firmware.varsPath, "firmware.varsPath");
  }
  if (spec.kernel) {
    absolutePath(spec.kernel.kernelPath, "kernel.kernelPath");
    if (spec.kernel.initrdPath !== undefined) absolutePath(spec.kernel.initrdPath, "kernel.initrdPath");
  }

  const deviceIds = new Set<string>();
  const uniqueId = (id: string, field: string): void => {
    need(QEMU_ID.test(id), field, "a letter, then letters, digits, '.', '_', '-'");
    need(!deviceIds.has(id), field, `duplicate device id "${id}"`);
    deviceIds.add(id);
  };

  spec.disks.forEach((d, i) => {
    uniqueId(d.id, `disks[${i}].id`);
    absolutePath(d.path, `disks[${i}].path`);
  });

  spec.nics.forEach((n, i) => {
    const f = `nics[${i}]`;
    uniqueId(n.id, `${f}.id`);
    need(MAC.test(n.mac), `${f}.mac`, "lower-case aa:bb:cc:dd:ee:ff");
    need((parseInt(n.mac.slice(0, 2), 16) & 1) === 0, `${f}.mac`, "must be unicast (first octet even)");
    if (n.kind === "user") {
      n.hostForwards.forEach((h, j) => {
        need(isIPv4(h.hostAddr), `${f}.hostForwards[${j}].hostAddr`, "must be an IPv4 address");
        need(isPort(h.hostPort), `${f}.hostForwards[${j}].hostPort`, "must be 1..65535");
        need(isPort(h.guestPort), `${f}.hostForwards[${j}].guestPort`, "must be 1..65535");
      });
    } else if (n.kind === "mcast") {
      const [addr = "", port = "", ...rest] = n.group.split(":");
      const firstOctet = Number(addr.split(".")[0]);
      need(
        rest.length === 0 && isIPv4(addr) && firstOctet >= 224 && firstOctet <= 239 && isPort(Number(port)),
        `${f}.group`,
        "must be an IPv4 multicast address and port, like 230.0.0.1:5558",
      );
    } else {
      need(IFNAME.test(n.ifname), `${f}.ifname`, "not a Linux interface name");
      if (n.mtu !== undefined) need(Number.isInteger(n.mtu) && n.mtu >= 576 && n.mtu <= 65535, `${f}.mtu`, "an integer 576..65535");
    }
  });

  if (spec.vnc) {
    need(isIPv4(spec.vnc.listenAddr), "vnc.listenAddr", "must be an IPv4 address");
    need(Number.isInteger(spec.vnc.port) && spec.vnc.port >= 5900 && spec.vnc.port <= 65535, "vnc.port", "must be 5900..65535");
    absolutePath(spec.vnc.passwordFile, "vnc.passwordFile");
  }

  const fwNames = new Set<string>();
  (spec.fwCfg ?? []).forEach((e, i) => {
    need(FW_CFG_NAME.test(e.name) && e.name.length <= 55, `fwCfg[${i}].name`, 'must start with "opt/", at most 55 characters');
    need(!fwNames.has(e.name), `fwCfg[${i}].name`, `duplicate fw_cfg name "${e.name}"`);
    fwNames.add(e.name);
    absolutePath(e.file, `fwCfg[${i}].file`);
  });

  if (spec.seedDisk !== undefined) absolutePath(spec.seedDisk, "seedDisk");

  (spec.gpus ?? []).forEach((g, i) => {
    need(PCI_ADDRESS.test(g.pciAddress), `gpus[${i}].pciAddress`, "lower-case dddd:bb:ss.f");
    (g.functions ?? []).forEach((f, j) => {
      need(PCI_ADDRESS.test(f), `gpus[${i}].functions[${j}]`, "lower-case dddd:bb:ss.f");
      need(f.slice(0, -2) === g.pciAddress.slice(0, -2) && f !== g.pciAddress, `gpus[${i}].functions[${j}]`, "another function of the GPU's slot");
    });
  });

  const ports = spec.hotplugPorts ?? 0;
  need(Number.isInteger(ports) && ports >= 0 && ports <= 32, "hotplugPorts", "must be 0..32");
  need(ports === 0 || spec.machine === "q35", "hotplugPorts", "only for q35 (pc hotplugs into pci.0 directly)");
}
