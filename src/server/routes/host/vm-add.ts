import { parseSizeBytes } from "../../../lib/units.js";
import { parseCustomPorts, parseSshPort, parseVncPort } from "../../../network/port-spec.js";
import type { VmAdd } from "../../../api/host-vm.js";
import { FieldError, type VmCreateRequest } from "../../../vm/create-request.js";
import { DEMO_IMAGE } from "../../../vm/images.js";
import { portField } from "../fields.js";

const toInt = (v: number | string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

function size(field: string, v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const bytes = parseSizeBytes(v);
  if (bytes === undefined) throw new FieldError(field, `${field}: not a size: ${JSON.stringify(v)} (use 512M, 8G, 8GB or a number of GB)`);
  return bytes;
}

/** Seed 000's `POST /common/vm/add` body → a create request. */
export function fromHostAdd(body: VmAdd): VmCreateRequest {
  const cores = toInt(body.cpu_physical_core)!;
  const vcpus = toInt(body.cpu_virtual_core) ?? cores;
  if (vcpus < cores) throw new FieldError("cpu_virtual_core", "cpu_virtual_core: must be at least cpu_physical_core");
  if (vcpus % cores !== 0) throw new FieldError("cpu_virtual_core", "cpu_virtual_core: must be a multiple of cpu_physical_core");
  const memoryBytes = size("main_memory", body.main_memory)!;
  if (memoryBytes < 64 * 2 ** 20) throw new FieldError("main_memory", "main_memory: at least 64M");
  return {
    nickname: body.nickname ?? "",
    owner: null,
    imageName: body.image_name ?? DEMO_IMAGE,
    cores,
    vcpus,
    memoryBytes,
    dataDiskBytes: size("disk_memory", body.disk_memory) ?? null,
    dataFileName: null,
    biosMode: "legacy",
    os: "linux",
    ...(body.ssh_port !== undefined ? { sshPort: portField(() => parseSshPort(body.ssh_port)) } : {}),
    ...(body.vnc_port !== undefined ? { vncPort: portField(() => parseVncPort(body.vnc_port)) } : {}),
    customPorts: portField(() => parseCustomPorts(body.custom_port ?? [])),
    gpuCount: toInt(body.gpu_count) ?? 0,
    startCommand: body.start_command ?? "",
    desc: "",
    multicast: [],
    networkName: null,
  };
}
