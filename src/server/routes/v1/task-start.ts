import { isIPv4 } from "node:net";
import { parseCustomPorts, parseRdpPort, parseSshPort, parseVncPort } from "../../../network/port-spec.js";
import { FieldError, type VmCreateRequest } from "../../../vm/create-request.js";
import type { LanAttachment } from "../../../network/lan/model.js";
import { DEMO_IMAGE } from "../../../vm/images.js";
import { portField } from "../fields.js";
import { formatNetworkFilters, parseNetworkFilters } from "../../../network/security-group.js";

/** A DBC `additional` value: DBC sends strings; batu accepts numbers too. */
type Loose = unknown;

const str = (v: Loose): string | undefined =>
  v === undefined || v === null ? undefined : typeof v === "number" ? String(v) : typeof v === "string" ? v : undefined;

function positiveInt(field: string, v: Loose, message: string): number {
  const s = str(v);
  if (s === undefined || !/^\d+$/.test(s.trim()) || Number(s) <= 0) throw new FieldError(field, message);
  return Number(s);
}

/** `operation_system` as DBC reads it: lower-cased, linux if it mentions linux/ubuntu, windows if win. */
function os(v: Loose): "linux" | "windows" {
  const s = (str(v) ?? "linux").toLowerCase();
  if (s.includes("linux") || s.includes("ubuntu")) return "linux";
  if (s.includes("win")) return "windows";
  throw new FieldError("operation_system", `unsupported operation system: ${s} (usage: 'linux' 'windows')`);
}

function biosMode(v: Loose): "legacy" | "uefi" {
  const s = (str(v) ?? "legacy").toLowerCase();
  if (s === "legacy" || s === "uefi") return s;
  if (s === "pxe") throw new FieldError("bios_mode", "bios mode pxe is not supported by batu");
  throw new FieldError("bios_mode", `unsupported bios mode: ${s} (usage: 'legacy(default)'、'uefi'、'pxe')`);
}

/**
 * Groups a guest must not join: the link-local and internetwork control blocks (routing protocols,
 * mDNS, NTP) and SSDP (batu's own discovery) and SLP. A guest there could answer for the LAN's hosts.
 */
function isLanControlGroup(ip: string): boolean {
  return ip.startsWith("224.0.0.") || ip.startsWith("224.0.1.") || ip === "239.255.255.250" || ip === "239.255.255.253";
}

function multicast(v: Loose): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new FieldError("multicast", "multicast format: ip:port");
  return v.map((entry) => {
    const m = typeof entry === "string" ? /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(entry.trim()) : null;
    if (!m || !isIPv4(m[1]!)) throw new FieldError("multicast", "multicast format: ip:port");
    const first = Number(m[1]!.split(".")[0]);
    if (first < 224 || first > 239) throw new FieldError("multicast", "address is not a multicast address");
    if (isLanControlGroup(m[1]!)) {
      throw new FieldError("multicast", `multicast ${m[1]} is the LAN's own control traffic (224.0.0.0/24, 224.0.1.0/24, SSDP, SLP): not for guests`);
    }
    const port = Number(m[2]);
    // Below 1024 are the well-known services' ports: a guest's group traffic has no business there.
    if (port < 1024 || port > 65535) throw new FieldError("multicast", "invalid multicast port (usage: 1024-65535)");
    return `${m[1]}:${port}`;
  });
}

/** DBC's `public_ip` (and `new_public_ip`): an IPv4 address, or empty for none (null). */
export function publicIpField(v: Loose, field = "public_ip"): string | null {
  const s = str(v);
  if (s === undefined) throw new FieldError(field, "invalid public ip");
  const t = s.trim();
  if (t === "") return null;
  if (!isIPv4(t)) throw new FieldError(field, "invalid public ip");
  return t;
}

/** DBC's `tasks/start` `additional` → a create request, with DBC's validation texts (reference §6). */
export function fromDbcCreate(a: Record<string, Loose>, owner: string, lan?: LanAttachment): VmCreateRequest {
  const taskId = str(a.task_id);
  if (taskId !== undefined) {
    if (taskId.length < 20 || taskId.length > 22) throw new FieldError("task_id", "wrong task id length");
    if (!/^[A-Za-z0-9]+$/.test(taskId)) throw new FieldError("task_id", "task id requires a combination of letters or numbers");
  }
  const system = os(a.operation_system);
  const gpuText = str(a.gpu_count) ?? "0";
  if (!/^\d+$/.test(gpuText.trim())) throw new FieldError("gpu_count", "gpu_count is invalid (usage: gpu_count >= 0)");
  const cores = positiveInt("cpu_cores", a.cpu_cores, "cpu_cores is invalid");
  const memGiB = positiveInt("mem_size", a.mem_size, "mem_size is invalid");
  const diskGiB = a.disk_size === undefined || a.disk_size === "" ? null : positiveInt("disk_size", a.disk_size, "disk_size is invalid (usage: disk_size > 0)");
  const imageName = str(a.image_name) ?? DEMO_IMAGE;
  const dataFile = str(a.data_file_name);
  const networkName = str(a.network_name);
  if (networkName && lan?.network !== networkName) throw new FieldError("network_name", "can not find network info");
  const desc = a.desc === undefined ? "" : str(a.desc);
  if (desc === undefined || desc.length > 1024) throw new FieldError("desc", "desc is invalid (a string of at most 1024 characters)");
  const nickname = str(a.nickname) ?? "";

  const req: VmCreateRequest = {
    ...(taskId !== undefined ? { id: taskId } : {}),
    nickname,
    owner,
    imageName,
    cores,
    vcpus: cores,
    memoryBytes: memGiB * 2 ** 30,
    dataDiskBytes: diskGiB === null ? null : diskGiB * 2 ** 30,
    dataFileName: dataFile || null,
    biosMode: biosMode(a.bios_mode),
    os: system,
    customPorts: portField(() => parseCustomPorts(a.custom_port ?? [])),
    gpuCount: Number(gpuText),
    startCommand: "",
    desc,
    multicast: multicast(a.multicast),
    networkName: lan ? lan.network : null,
    ...(lan ? { lan } : {}),
    networkFilters: formatNetworkFilters(parseNetworkFilters(a.network_filters)),
    publicIp: a.public_ip === undefined || a.public_ip === null ? null : publicIpField(a.public_ip),
  };
  // Absent, batu picks a port (DBC requires them); given empty, DBC's own refusal (`ssh_port is empty`).
  // The other system's port is ignored, as DBC ignores it: its clients send both.
  if (system === "linux") {
    if (a.ssh_port !== undefined) req.sshPort = portField(() => parseSshPort(a.ssh_port));
  } else {
    req.sshPort = null;
    if (a.rdp_port !== undefined) req.rdpPort = portField(() => parseRdpPort(a.rdp_port));
  }
  if (a.vnc_port !== undefined) req.vncPort = portField(() => parseVncPort(a.vnc_port));
  return req;
}
