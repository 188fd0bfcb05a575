import { randomBytes, randomInt } from "node:crypto";
import type { PortForward, VmSpec } from "./spec.js";
import type { ReservedPort } from "./ports.js";
import type { LanAttachment } from "../network/lan/model.js";
import type { RentalLimits } from "../auth/rental-ledger.js";
import { ioLimitsOfGrant } from "./io-limits.js";

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
  /** DBC's `network_filters`, checked and normalized (network/security-group.ts). */
  networkFilters?: string[];
  /** DBC's `public_ip`: an address of the operator's pool. */
  publicIp?: string | null;
  networkName: string | null;
  /** A NIC on this LAN network, its address given by the group's master (network/lan). */
  lan?: LanAttachment | null;
  /** What the owner's rental of this node gives (renting by GPU, caps); absent: no rental limits (the operator). */
  quota?: RentalLimits;
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

/** The stored spec of a new VM: the request, its reserved ports, and fresh login secrets. */
export function specFrom(req: VmCreateRequest, ports: ReservedPort[], loginUser: string): VmSpec {
  const loginPassword = newLoginPassword();
  const io = ioLimitsOfGrant(req.quota);
  return {
    imageName: req.imageName,
    cpu: { cores: req.cores, threads: req.vcpus / req.cores },
    memoryMiB: Math.ceil(req.memoryBytes / 2 ** 20),
    dataDiskBytes: req.dataDiskBytes,
    dataFileName: req.dataFileName,
    biosMode: req.biosMode,
    os: req.os,
    ports: {
      ssh: ports.find((p) => p.kind === "ssh")?.port ?? null,
      rdp: ports.find((p) => p.kind === "rdp")?.port ?? null,
      vnc: ports.find((p) => p.kind === "vnc")!.port,
      custom: req.customPorts,
    },
    gpuCount: req.gpuCount,
    startCommand: req.startCommand,
    desc: req.desc,
    loginUser,
    loginPassword,
    // VNC reads only 8 bytes of a password; DBC shows the same truncation.
    vncPassword: loginPassword.slice(0, 8),
    multicast: req.multicast,
    networkName: req.networkName,
    ...(req.networkFilters?.length ? { networkFilters: req.networkFilters } : {}),
    ...(req.publicIp ? { publicIp: req.publicIp } : {}),
    ...(req.lan ? { lan: req.lan } : {}),
    ...(io ? { io } : {}),
  };
}
