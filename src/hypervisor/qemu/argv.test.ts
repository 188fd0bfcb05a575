import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buildQemuArgv } from "./argv.js";
import type { QemuSpec } from "./spec.js";
import { QemuSpecError } from "./validate.js";

const goldenDir = fileURLToPath(new URL("./golden/", import.meta.url));

/** Compares argv with golden/<name>.json; `UPDATE_GOLDEN=1 npx vitest run` rewrites them (then review by eye). */
async function expectGolden(name: string, argv: string[]): Promise<void> {
  const path = `${goldenDir}${name}.json`;
  if (process.env.UPDATE_GOLDEN === "1") await writeFile(path, `${JSON.stringify(argv, null, 2)}\n`);
  else if (!existsSync(path)) throw new Error(`missing golden ${path}: run with UPDATE_GOLDEN=1, then review it`);
  expect(argv).toEqual(JSON.parse(await readFile(path, "utf8")));
}

const base: QemuSpec = {
  name: "t1",
  runDir: "/run/batu/vms/t1",
  accel: "tcg",
  cpuModel: "max",
  machine: "pc",
  cpu: { sockets: 1, cores: 1, threads: 1 },
  memoryMiB: 256,
  firmware: { kind: "bios" },
  disks: [],
  nics: [],
};

const userNic = {
  kind: "user" as const,
  id: "net0",
  mac: "52:54:00:12:34:56",
  hostForwards: [{ proto: "tcp" as const, hostAddr: "0.0.0.0", hostPort: 5684, guestPort: 22 }],
};

const GOLDEN_SPECS: Record<string, QemuSpec> = {
  "kernel-tcg-minimal": {
    ...base,
    kernel: { kernelPath: "/var/lib/batu/images/demo/vmlinuz", initrdPath: "/var/lib/batu/images/demo/initrd.gz", cmdline: "console=ttyS0 quiet ip=dhcp" },
    nics: [userNic],
  },
  "bios-disk-data": {
    ...base,
    cpu: { sockets: 1, cores: 2, threads: 1 },
    memoryMiB: 2048,
    disks: [
      { id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" },
      { id: "vdb", path: "/var/lib/batu/vms/t1/vdb.raw", format: "raw" },
    ],
    nics: [
      {
        ...userNic,
        hostForwards: [
          { proto: "tcp", hostAddr: "0.0.0.0", hostPort: 5684, guestPort: 22 },
          { proto: "tcp", hostAddr: "0.0.0.0", hostPort: 5685, guestPort: 3389 },
        ],
      },
    ],
  },
  "uefi-q35": {
    ...base,
    machine: "q35",
    firmware: { kind: "uefi", codePath: "/usr/share/OVMF/OVMF_CODE_4M.fd", varsPath: "/var/lib/batu/vms/t1/OVMF_VARS.fd" },
    disks: [{ id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" }],
    nics: [userNic],
    hotplugPorts: 2,
  },
  "kvm-host": {
    ...base,
    accel: "kvm",
    cpuModel: "host",
    cpu: { sockets: 2, cores: 2, threads: 2 },
    memoryMiB: 8192,
    disks: [{ id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" }],
    nics: [userNic],
  },
  "vnc-fwcfg-forwards": {
    ...base,
    disks: [{ id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" }],
    nics: [
      {
        ...userNic,
        hostForwards: [
          { proto: "tcp", hostAddr: "0.0.0.0", hostPort: 5684, guestPort: 22 },
          { proto: "tcp", hostAddr: "127.0.0.1", hostPort: 20000, guestPort: 8080 },
          { proto: "udp", hostAddr: "0.0.0.0", hostPort: 20001, guestPort: 53 },
        ],
      },
    ],
    vnc: { listenAddr: "0.0.0.0", port: 5904, passwordFile: "/run/batu/vms/t1/vnc.secret" },
    fwCfg: [
      { name: "opt/batu/password", file: "/run/batu/vms/t1/password" },
      { name: "opt/batu/hostname", file: "/run/batu/vms/t1/hostname" },
    ],
  },
  "guest-agent": {
    ...base,
    disks: [{ id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" }],
    guestAgent: true,
  },
  "cloud-init-seed": {
    ...base,
    disks: [
      { id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" },
      { id: "vdb", path: "/var/lib/batu/vms/t1/vdb.qcow2", format: "qcow2" },
    ],
    seedDisk: "/var/lib/batu/vms/t1/cloud-init-seed.img",
  },
  "mcast-tap": {
    ...base,
    disks: [{ id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" }],
    nics: [
      { ...userNic, hostForwards: [] },
      { kind: "mcast", id: "net1", mac: "52:54:00:12:34:57", group: "230.0.0.1:5558" },
      { kind: "tap", id: "net2", mac: "52:54:00:12:34:58", ifname: "batu-t1-2" },
    ],
  },
  gpu: {
    ...base,
    accel: "kvm",
    cpuModel: "host",
    machine: "q35",
    cpu: { sockets: 1, cores: 8, threads: 1 },
    memoryMiB: 32768,
    disks: [{ id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" }],
    nics: [userNic],
    // Two GPUs: one with its slot's audio function beside it, one a Windows guest's (ROM BAR off).
    gpus: [{ pciAddress: "0000:01:00.0", functions: ["0000:01:00.1"] }, { pciAddress: "0000:41:00.0", romBar: false }],
    hotplugPorts: 1,
  },
  "gpu-pc": {
    ...base,
    accel: "kvm",
    cpuModel: "host",
    memoryMiB: 4096,
    disks: [{ id: "vda", path: "/var/lib/batu/vms/t1/vda.qcow2", format: "qcow2" }],
    gpus: [{ pciAddress: "0000:65:00.0" }],
  },
};

describe("buildQemuArgv golden files", () => {
  for (const [name, spec] of Object.entries(GOLDEN_SPECS)) {
    it(name, async () => {
      await expectGolden(name, buildQemuArgv(spec));
    });
  }

  it("is pure: the same spec gives the same argv, and the spec is not changed", () => {
    const spec = structuredClone(GOLDEN_SPECS["vnc-fwcfg-forwards"]!);
    const before = JSON.stringify(spec);
    expect(buildQemuArgv(spec)).toEqual(buildQemuArgv(spec));
    expect(JSON.stringify(spec)).toBe(before);
  });
});

describe("buildQemuArgv details", () => {
  it("doubles commas in paths inside option values, and leaves -kernel/-append verbatim", () => {
    const argv = buildQemuArgv({
      ...base,
      runDir: "/run/a,b",
      kernel: { kernelPath: "/k,1/vmlinuz", cmdline: "console=ttyS0,115200" },
      disks: [{ id: "vda", path: "/data/x,y.qcow2", format: "qcow2" }],
    });
    expect(argv).toContain("driver=file,node-name=disk-vda-file,filename=/data/x,,y.qcow2,discard=unmap");
    expect(argv).toContain("socket,id=qmp,path=/run/a,,b/qmp.sock,server=on,wait=off");
    expect(argv).toContain("/k,1/vmlinuz");
    expect(argv).toContain("console=ttyS0,115200");
    expect(argv).toContain("/run/a,b/qemu.pid");
  });

  it("boots the first disk only when there is no kernel", () => {
    const disks = [{ id: "vda", path: "/d/a.qcow2", format: "qcow2" as const }];
    expect(buildQemuArgv({ ...base, disks }).join(" ")).toContain("bootindex=1");
    const withKernel = buildQemuArgv({ ...base, disks, kernel: { kernelPath: "/k", cmdline: "" } });
    expect(withKernel.join(" ")).not.toContain("bootindex");
  });

  it("never puts a secret's content on the command line, only file paths", () => {
    const argv = buildQemuArgv(GOLDEN_SPECS["vnc-fwcfg-forwards"]!).join(" ");
    expect(argv).not.toMatch(/password=[^-]|data=/);
    expect(argv).toContain("file=/run/batu/vms/t1/vnc.secret");
  });
});

describe("buildQemuArgv rejects unsound specs", () => {
  const bad: Array<[string, Partial<QemuSpec>]> = [
    ["name", { name: "a b" }],
    ["runDir", { runDir: "relative/dir" }],
    ["runDir", { runDir: `/${"x".repeat(100)}` }],
    ["cpu", { cpu: { sockets: 1, cores: 0, threads: 1 } }],
    ["memoryMiB", { memoryMiB: 8 }],
    ["disks[1].id", { disks: [{ id: "vda", path: "/a", format: "raw" }, { id: "vda", path: "/b", format: "raw" }] }],
    ["disks[0].path", { disks: [{ id: "vda", path: "a.qcow2", format: "qcow2" }] }],
    ["nics[0].mac", { nics: [{ ...userNic, mac: "53:54:00:12:34:56" }] }],
    ["nics[0].mac", { nics: [{ ...userNic, mac: "52-54-00-12-34-56" }] }],
    ["nics[0].id", { disks: [{ id: "net0", path: "/a", format: "raw" }], nics: [userNic] }],
    ["nics[0].hostForwards[0].hostPort", { nics: [{ ...userNic, hostForwards: [{ proto: "tcp", hostAddr: "0.0.0.0", hostPort: 70000, guestPort: 22 }] }] }],
    ["nics[0].hostForwards[0].hostAddr", { nics: [{ ...userNic, hostForwards: [{ proto: "tcp", hostAddr: "::", hostPort: 22, guestPort: 22 }] }] }],
    ["nics[0].group", { nics: [{ kind: "mcast", id: "n", mac: "52:54:00:00:00:01", group: "10.0.0.1:5558" }] }],
    ["nics[0].ifname", { nics: [{ kind: "tap", id: "n", mac: "52:54:00:00:00:01", ifname: "a-very-long-tap-name" }] }],
    ["vnc.port", { vnc: { listenAddr: "0.0.0.0", port: 5899, passwordFile: "/p" } }],
    ["fwCfg[0].name", { fwCfg: [{ name: "batu/password", file: "/p" }] }],
    ["gpus[0].pciAddress", { gpus: [{ pciAddress: "01:00.0" }] }],
    ["gpus[0].functions[0]", { gpus: [{ pciAddress: "0000:01:00.0", functions: ["0000:02:00.1"] }] }],
    ["hotplugPorts", { hotplugPorts: 2 }],
  ];
  for (const [field, patch] of bad) {
    it(`${field}: ${JSON.stringify(patch).slice(0, 70)}`, () => {
      const err = (() => {
        try {
          buildQemuArgv({ ...base, ...patch });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(QemuSpecError);
      expect((err as QemuSpecError).field).toBe(field);
    });
  }
});
