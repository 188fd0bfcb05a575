import { randomBytes, randomInt } from "node:crypto";
import { parseSizeBytes } from "../lib/units.js";
import { parseCustomPorts, parseSshPort, parseVncPort, PortSpecError } from "../network/port-spec.js";
import type { VmAdd } from "../api/host-vm.js";
import type { PortForward } from "./spec.js";
import { DEMO_IMAGE } from "./images.js";

/** A request a user can fix: names the field. Both faces turn it into their 400. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "FieldError";
  }
}

/** What both faces ask for when they create a VM; the service fills in the rest. */
export interface VmCreateRequest {
  id?: string;
  nickname: string;
  owner: string | null;
  imageName: string;
  cores: number;
  vcpus: number;
  memoryBytes: number;
  dataDiskBytes: number | null;
  dataFileName: string | null;
  biosMode: "legacy" | "uefi";
  os: "linux" | "windows";
  /** undefined: pick one; null: none. */
  sshPort?: number | null;
  rdpPort?: number | null;
  /** undefined: pick one. */
  vncPort?: number;
  customPorts: PortForward[];
  gpuCount: number;
  startCommand: string;
  desc: string;
  multicast: string[];
  networkName: string | null;
}

const toInt = (v: number | string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

function size(field: string, v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const bytes = parseSizeBytes(v);
  if (bytes === undefined) throw new FieldError(field, `${field}: not a size: ${JSON.stringify(v)} (use 512M, 8G, 8GB or a number of GB)`);
  return bytes;
}

/** Runs a port parser, turning its PortSpecError into the FieldError both faces report. */
export function portField<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PortSpecError) throw new FieldError(e.field, e.message);
    throw e;
  }
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

const PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_/+[]@#^";
const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** DBC's login password form: 16 characters of [A-Za-z0-9_/+[]@#^], the first a letter. */
export function newLoginPassword(): string {
  let p = LETTERS[randomInt(LETTERS.length)]!;
  while (p.length < 16) p += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]!;
  return p;
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/** A task id like DBC's: 22 base58 characters. */
export function newVmId(): string {
  const bytes = randomBytes(22);
  return Array.from(bytes, (b) => BASE58[b % BASE58.length]).join("");
}
