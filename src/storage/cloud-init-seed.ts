import { mkdtemp, open, rename, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { exec } from "../lib/index.js";

/**
 * What a guest with cloud-init learns from batu at its first boot (images whose sidecar says
 * `"cloud_init": true`, e.g. `debian-12.qcow2`).
 */
export interface NoCloudSeed {
  /** cloud-init runs its per-instance steps again when this changes: the task id. */
  instanceId: string;
  /** The guest's host name (one or more DNS labels). */
  hostname: string;
  /** The login user, made if missing (with passwordless sudo), or `root`. */
  user: string;
  /** The user's login password, in plain text; cloud-init hashes it in the guest. */
  password: string;
  /** OpenSSH public keys (`ssh-ed25519 AAAA... comment`) for the user. */
  sshAuthorizedKeys?: readonly string[];
  /**
   * The guest NIC's MAC address (`52:54:00:12:34:56`): the network config then matches the NIC
   * by MAC, whatever the guest names it. Without it, it names `eth0` (the image boots with
   * `net.ifnames=0`).
   */
  macAddress?: string;
  /** The MAC of the guest's NIC on a LAN network (network/lan), if it has one: DHCP there too, no route beyond. */
  lanMacAddress?: string;
}

/** The three files of a NoCloud seed, as cloud-init reads them. */
export interface NoCloudFiles {
  "meta-data": string;
  "user-data": string;
  "network-config": string;
}

/** A seed field that batu refuses to put in front of cloud-init. */
export class SeedInputError extends Error {
  constructor(
    readonly field: keyof NoCloudSeed,
    reason: string,
  ) {
    super(`cloud-init seed: ${field} ${reason}`);
    this.name = "SeedInputError";
  }
}

/** The volume label cloud-init's NoCloud data source looks for. */
export const SEED_LABEL = "CIDATA";
/** A 1440 KiB FAT12 image (mformat's floppy geometry): the seed's files take a few KiB. */
const SEED_FLOPPY_KIB = 1440;
/** Each mtools call touches a 1.4 MiB file: well under a second. */
const MTOOLS_TIMEOUT_MS = 30_000;

const INSTANCE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const HOST_LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Debian's adduser NAME_REGEX, without the `$` of machine accounts. */
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const PASSWORD_RE = /^[\x20-\x7e]{1,128}$/;
const SSH_KEY_RE =
  /^(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [\x20-\x7e]{0,256})?$/;
const MAC_RE = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;
const MAX_SSH_KEYS = 64;

/** Checks every field; throws a SeedInputError naming the first bad one. */
export function validateNoCloudSeed(seed: NoCloudSeed): void {
  if (!INSTANCE_ID_RE.test(seed.instanceId)) throw new SeedInputError("instanceId", "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  const labels = seed.hostname.split(".");
  if (seed.hostname.length > 253 || !labels.every((l) => HOST_LABEL_RE.test(l))) {
    throw new SeedInputError("hostname", "must be DNS labels of letters, digits and inner hyphens");
  }
  if (!USER_RE.test(seed.user)) throw new SeedInputError("user", "must match [a-z_][a-z0-9_-]{0,31}");
  if (!PASSWORD_RE.test(seed.password)) throw new SeedInputError("password", "must be 1 to 128 printable ASCII characters");
  const keys = seed.sshAuthorizedKeys ?? [];
  if (keys.length > MAX_SSH_KEYS) throw new SeedInputError("sshAuthorizedKeys", `has more than ${MAX_SSH_KEYS} keys`);
  keys.forEach((key, i) => {
    if (!SSH_KEY_RE.test(key)) throw new SeedInputError("sshAuthorizedKeys", `[${i}] is not one OpenSSH public key line`);
  });
  if (seed.macAddress !== undefined && !MAC_RE.test(seed.macAddress)) {
    throw new SeedInputError("macAddress", "must be six hex bytes separated by colons");
  }
  if (seed.lanMacAddress !== undefined && !MAC_RE.test(seed.lanMacAddress)) {
    throw new SeedInputError("lanMacAddress", "must be six hex bytes separated by colons");
  }
}

// JSON is YAML: a JSON string literal is a safe YAML scalar whatever it holds.
const q = (s: string): string => JSON.stringify(s);
const list = (items: readonly string[]): string => `[${items.map(q).join(", ")}]`;

/**
 * The seed's files for `seed` (validated first). Pure: what goes on the disk is pinned by tests.
 * Nothing in them makes the guest reach past the host: no packages, no mirrors.
 */
export function renderNoCloudFiles(seed: NoCloudSeed): NoCloudFiles {
  validateNoCloudSeed(seed);
  const keys = seed.sshAuthorizedKeys ?? [];
  const root = seed.user === "root";

  const metaData = [`instance-id: ${q(seed.instanceId)}`, `local-hostname: ${q(seed.hostname)}`, ""].join("\n");

  const userData = ["#cloud-config", "# Written by batu for this instance; cloud-init applies it at first boot."];
  userData.push(`hostname: ${q(seed.hostname)}`, "preserve_hostname: false", "manage_etc_hosts: true");
  if (root) {
    // No other user; root logs in with its password (and keys: cloud-init gives root the
    // top-level keys, blocked with a "log in as ..." prefix unless disable_root is false).
    userData.push("users: []", "disable_root: false");
    if (keys.length > 0) userData.push(`ssh_authorized_keys: ${list(keys)}`);
    userData.push(
      "write_files:",
      "  - path: /etc/ssh/sshd_config.d/60-batu-root-login.conf",
      '    permissions: "0644"',
      "    content: |",
      "      # batu: the task's login user is root, with a password.",
      "      PermitRootLogin yes",
    );
  } else {
    // Only this user (cloud.cfg's "default" user is not made), with passwordless sudo as the
    // distribution's cloud images give theirs; root's SSH login stays off.
    userData.push(
      "users:",
      `  - name: ${q(seed.user)}`,
      "    shell: /bin/bash",
      `    groups: ${list(["adm", "sudo"])}`,
      `    sudo: ${q("ALL=(ALL) NOPASSWD:ALL")}`,
      "    lock_passwd: false",
    );
    if (keys.length > 0) userData.push(`    ssh_authorized_keys: ${list(keys)}`);
    userData.push("disable_root: true");
  }
  userData.push(
    "chpasswd:",
    "  expire: false",
    "  users:",
    `    - {name: ${q(seed.user)}, password: ${q(seed.password)}, type: text}`,
    "ssh_pwauth: true",
    "package_update: false",
    "package_upgrade: false",
    "package_reboot_if_required: false",
    "",
  );

  const match = seed.macAddress !== undefined ? `{macaddress: ${q(seed.macAddress.toLowerCase())}}` : `{name: ${q("eth0")}}`;
  const networkConfig = [
    "# DHCP on the guest's one NIC (QEMU's user network or batu's bridge answers).",
    "version: 2",
    "ethernets:",
    "  eth0:",
    `    match: ${match}`,
    "    dhcp4: true",
    "    dhcp6: false",
    // A LAN network's NIC: its DHCP gives an address and no gateway; its routes never replace eth0's.
    ...(seed.lanMacAddress !== undefined
      ? ["  lan0:", `    match: {macaddress: ${q(seed.lanMacAddress.toLowerCase())}}`, "    dhcp4: true", "    dhcp4-overrides: {use-routes: false, use-dns: false}", "    dhcp6: false"]
      : []),
    "",
  ].join("\n");

  return { "meta-data": metaData, "user-data": userData.join("\n"), "network-config": networkConfig };
}

/** Where an MBR keeps its four partition entries (boot code area of a FAT boot sector). */
const MBR_PARTITIONS_OFFSET = 446;
const MBR_PARTITIONS_BYTES = 64;

/**
 * mformat writes an MBR entry spanning the whole image into the FAT boot sector, so the guest
 * kernel adds a partition (vdb1) holding the same filesystem: two CIDATA devices. Zeroed, the
 * kernel reads it as the plain FAT floppy it is.
 */
async function clearPartitionTable(path: string): Promise<void> {
  const file = await open(path, "r+");
  try {
    await file.write(Buffer.alloc(MBR_PARTITIONS_BYTES), 0, MBR_PARTITIONS_BYTES, MBR_PARTITIONS_OFFSET);
  } finally {
    await file.close();
  }
}

export interface SeedWriteOptions {
  signal?: AbortSignal;
}

/**
 * Writes a NoCloud seed for `seed` at `path`: a small FAT image labelled CIDATA holding
 * `meta-data`, `user-data` and `network-config`, to attach to the guest as a read-only drive.
 * The image holds the password in plain text: it is made owner-only, and replaces `path` by
 * rename only once complete. Throws SeedInputError for a bad field, ExecError if mtools fails.
 */
export async function writeNoCloudSeed(path: string, seed: NoCloudSeed, opts: SeedWriteOptions = {}): Promise<void> {
  const files = renderNoCloudFiles(seed);
  const staging = await mkdtemp(join(tmpdir(), "batu-seed-"));
  // Beside the target, so the final rename stays on one filesystem.
  const partial = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const run = (command: string, args: string[]) =>
    exec(command, args, {
      timeoutMs: MTOOLS_TIMEOUT_MS,
      // mtools refuses a FAT image whose geometry it finds odd unless told not to check.
      env: { ...process.env, MTOOLS_SKIP_CHECK: "1", MTOOLSRC: "/dev/null" },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  try {
    for (const [name, content] of Object.entries(files)) {
      await writeFile(join(staging, name), content, { mode: 0o600 });
    }
    // mformat formats an image of the right size; it does not grow an empty file.
    await writeFile(partial, "", { mode: 0o600, flag: "wx" });
    await truncate(partial, SEED_FLOPPY_KIB * 1024);
    await run("mformat", ["-i", partial, "-f", String(SEED_FLOPPY_KIB), "-v", SEED_LABEL, "::"]);
    await clearPartitionTable(partial);
    for (const name of Object.keys(files)) {
      await run("mcopy", ["-i", partial, join(staging, name), `::/${name}`]);
    }
    await rename(partial, path);
  } finally {
    await rm(partial, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}
