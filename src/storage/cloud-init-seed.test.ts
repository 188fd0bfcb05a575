// The NoCloud seed read back with the real tools: mtools for the FAT image, blkid for its label,
// PyYAML (the parser cloud-init itself uses) for the YAML.
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exec } from "../lib/index.js";
import { type NoCloudSeed, SeedInputError, renderNoCloudFiles, writeNoCloudSeed } from "./cloud-init-seed.js";

const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: "1", MTOOLSRC: "/dev/null" };
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGu0o8dN0QX4cwS5c1wV3kq2vVQG0hGfX8yZ1c7b6mXa renter@laptop";

const seed: NoCloudSeed = {
  instanceId: "task-0001",
  hostname: "task-0001",
  user: "dbc",
  // DBC's password alphabet plus what YAML and chpasswd find awkward.
  password: `A#b: "c'd\\e[f]@^/+_ -{g}`,
  sshAuthorizedKeys: [KEY],
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "batu-seed-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function mtype(image: string, name: string): Promise<string> {
  return (await exec("mtype", ["-i", image, `::/${name}`], { env: MTOOLS_ENV })).stdout;
}

/** Parses YAML with PyYAML's safe_load, as cloud-init does (Debian's python3-yaml), and returns it as JSON. */
async function pyYaml(text: string): Promise<unknown> {
  const script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))";
  return JSON.parse((await exec("/usr/bin/python3", ["-c", script], { input: text })).stdout) as unknown;
}

describe("writeNoCloudSeed", () => {
  it("writes a FAT image labelled CIDATA holding the three files, owner-only, nothing left behind", async () => {
    const path = join(dir, "seed.img");
    await writeNoCloudSeed(path, seed);

    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(["seed.img"]);
    const { stdout: blkid } = await exec("blkid", ["-o", "export", path]);
    expect(blkid).toMatch(/^TYPE=vfat$/m);
    expect(blkid).toMatch(/^LABEL=CIDATA$/m);

    const { stdout: listing } = await exec("mdir", ["-b", "-i", path, "::/"], { env: MTOOLS_ENV });
    expect(listing.split("\n").filter(Boolean).sort()).toEqual(["::/meta-data", "::/network-config", "::/user-data"]);
    // No MBR partition entries: the guest sees one CIDATA device, not a vdb1 copy as well.
    expect((await readFile(path)).subarray(446, 510).every((b) => b === 0)).toBe(true);
    const files = renderNoCloudFiles(seed);
    for (const name of ["meta-data", "user-data", "network-config"] as const) {
      expect(await mtype(path, name)).toBe(files[name]);
    }
  });

  it("replaces an existing seed whole", async () => {
    const path = join(dir, "again.img");
    await writeNoCloudSeed(path, seed);
    await writeNoCloudSeed(path, { ...seed, instanceId: "task-0002" });
    expect(await mtype(path, "meta-data")).toContain('instance-id: "task-0002"');
  });

  it("leaves no file when a field is refused", async () => {
    const path = join(dir, "refused.img");
    await expect(writeNoCloudSeed(path, { ...seed, hostname: "a b" })).rejects.toBeInstanceOf(SeedInputError);
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
  });
});

describe("renderNoCloudFiles", () => {
  it("gives cloud-init the host name, the user with its exact password and keys, and no package steps", async () => {
    const files = renderNoCloudFiles(seed);
    expect(files["user-data"].startsWith("#cloud-config\n")).toBe(true);
    expect(await pyYaml(files["meta-data"])).toEqual({ "instance-id": "task-0001", "local-hostname": "task-0001" });
    expect(await pyYaml(files["user-data"])).toEqual({
      hostname: "task-0001",
      preserve_hostname: false,
      manage_etc_hosts: true,
      users: [
        {
          name: "dbc",
          shell: "/bin/bash",
          groups: ["adm", "sudo"],
          sudo: "ALL=(ALL) NOPASSWD:ALL",
          lock_passwd: false,
          ssh_authorized_keys: [KEY],
        },
      ],
      disable_root: true,
      chpasswd: { expire: false, users: [{ name: "dbc", password: seed.password, type: "text" }] },
      ssh_pwauth: true,
      package_update: false,
      package_upgrade: false,
      package_reboot_if_required: false,
    });
    expect(await pyYaml(files["network-config"])).toEqual({
      version: 2,
      ethernets: { eth0: { match: { name: "eth0" }, dhcp4: true, dhcp6: false } },
    });
  });

  it("lets root log in with its password when root is the user", async () => {
    const userData = (await pyYaml(renderNoCloudFiles({ ...seed, user: "root" })["user-data"])) as Record<string, unknown>;
    expect(userData.users).toEqual([]);
    expect(userData.disable_root).toBe(false);
    expect(userData.ssh_authorized_keys).toEqual([KEY]);
    expect(userData.chpasswd).toEqual({ expire: false, users: [{ name: "root", password: seed.password, type: "text" }] });
    expect(userData.write_files).toEqual([
      expect.objectContaining({ path: "/etc/ssh/sshd_config.d/60-batu-root-login.conf", content: expect.stringContaining("PermitRootLogin yes") }),
    ]);
  });

  it("matches the NIC by MAC address when given one", async () => {
    const net = await pyYaml(renderNoCloudFiles({ ...seed, macAddress: "52:54:00:AB:cd:01" })["network-config"]);
    expect(net).toEqual({ version: 2, ethernets: { eth0: { match: { macaddress: "52:54:00:ab:cd:01" }, dhcp4: true, dhcp6: false } } });
  });

  it("gives a LAN network's NIC DHCP too, matched by its MAC, its routes and DNS not taken", async () => {
    const net = (await pyYaml(renderNoCloudFiles({ ...seed, macAddress: "52:54:00:ab:cd:01", lanMacAddress: "06:6A:c0:a8:42:01" })["network-config"])) as { ethernets: Record<string, { match: unknown }> };
    expect(net.ethernets.lan0).toEqual({ match: { macaddress: "06:6a:c0:a8:42:01" }, dhcp4: true, "dhcp4-overrides": { "use-routes": false, "use-dns": false }, dhcp6: false });
    expect(net.ethernets.eth0?.match).toEqual({ macaddress: "52:54:00:ab:cd:01" });
  });

  it.each<[keyof NoCloudSeed, unknown]>([
    ["instanceId", ""],
    ["instanceId", "a/b"],
    ["hostname", "-bad"],
    ["hostname", "a..b"],
    ["hostname", `${"a".repeat(64)}`],
    ["user", "Root"],
    ["user", "a:b"],
    ["user", "a\nb"],
    ["password", ""],
    ["password", "line\nbreak"],
    ["password", "é"],
    ["password", "x".repeat(129)],
    ["sshAuthorizedKeys", ["not a key"]],
    ["sshAuthorizedKeys", [`${KEY}\nssh-ed25519 AAAA second`]],
    ["sshAuthorizedKeys", [`command="rm -rf /" ${KEY}`]],
    ["macAddress", "52:54:00:ab:cd"],
    ["lanMacAddress", "06:6a:c0:a8:42"],
  ])("refuses %s %j", (field, value) => {
    expect(() => renderNoCloudFiles({ ...seed, [field]: value } as NoCloudSeed)).toThrow(
      expect.objectContaining({ name: "SeedInputError", field }),
    );
  });
});
