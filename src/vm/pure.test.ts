import { describe, expect, it } from "vitest";
import { checkFit, committed, type HostCapacity } from "./resources.js";
import type { VmStatus } from "./state.js";
import { testSpec } from "./testing.js";
import { newLoginPassword, newVmId } from "./create-request.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { hostForwardsOf, macFor, toQemuSpec } from "./qemu-spec.js";
import type { VmSpec } from "./spec.js";

const GiB = 2 ** 30;
const host: HostCapacity = {
  cpuThreads: 4,
  memoryBytes: 8 * GiB,
  diskTotalBytes: 100 * GiB,
  diskFreeBytes: 100 * GiB,
  cpuOvercommit: 1,
  diskOvercommit: 1,
  memoryReserveBytes: GiB,
};

describe("checkFit", () => {
  it("counts what running VMs hold", () => {
    expect(checkFit(host, { vcpus: 2, memoryBytes: 2 * GiB, diskBytes: 0 }, { vcpus: 2, memoryBytes: 5 * GiB, diskBytes: GiB })).toBeUndefined();
    expect(checkFit(host, { vcpus: 3, memoryBytes: 0, diskBytes: 0 }, { vcpus: 2, memoryBytes: GiB, diskBytes: 0 })).toMatchObject({ field: "cpu", message: /allocate cpu failed: 2 vCPUs asked, 1 of 4 free/ });
    expect(checkFit(host, { vcpus: 0, memoryBytes: 6 * GiB, diskBytes: 0 }, { vcpus: 1, memoryBytes: 2 * GiB, diskBytes: 0 })).toMatchObject({ field: "memory" });
    expect(checkFit(host, { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, { vcpus: 1, memoryBytes: GiB, diskBytes: 200 * GiB })).toMatchObject({ field: "disk" });
  });
  it("promises disk up to the file system's size times the operator's ratio, and needs the space free now", () => {
    const none = { vcpus: 0, memoryBytes: 0 };
    // 60 GiB promised already: 50 more exceed 100 GiB, 40 do not.
    expect(checkFit(host, { ...none, diskBytes: 60 * GiB }, { vcpus: 1, memoryBytes: GiB, diskBytes: 50 * GiB })).toMatchObject({
      field: "disk",
      message: "allocate disk failed: 50.0 GiB asked, 40.0 of 100.0 GiB left to promise",
    });
    expect(checkFit(host, { ...none, diskBytes: 60 * GiB }, { vcpus: 1, memoryBytes: GiB, diskBytes: 40 * GiB })).toBeUndefined();
    expect(checkFit({ ...host, diskOvercommit: 2 }, { ...none, diskBytes: 60 * GiB }, { vcpus: 1, memoryBytes: GiB, diskBytes: 50 * GiB })).toBeUndefined();
    // Over-promised already (the operator lowered the ratio): what asks for no disk still fits.
    expect(checkFit(host, { ...none, diskBytes: 150 * GiB }, { vcpus: 1, memoryBytes: GiB, diskBytes: 0 })).toBeUndefined();
    expect(checkFit({ ...host, diskFreeBytes: 10 * GiB, diskOvercommit: 4 }, { ...none, diskBytes: 0 }, { vcpus: 1, memoryBytes: GiB, diskBytes: 20 * GiB })).toMatchObject({
      message: "allocate disk failed: 20.0 GiB asked, 10.0 GiB free",
    });
  });

  it("counts every existing VM's disks (a shut-off VM keeps them), a failed creation's none", () => {
    const vm = (id: string, status: VmStatus, dataDiskBytes: number | null, systemDiskBytes: number | null) => ({
      id,
      status,
      systemDiskBytes,
      spec: { ...testSpec(id), dataDiskBytes },
    });
    const held = committed([vm("a", "running", 10 * GiB, GiB), vm("b", "closed", 20 * GiB, GiB), vm("c", "create error", 30 * GiB, null)]);
    expect(held).toEqual({ vcpus: 1, memoryBytes: 512 * 2 ** 20, diskBytes: 32 * GiB });
    expect(committed([vm("a", "running", 10 * GiB, GiB)], "a").diskBytes).toBe(0);
  });

  it("lets the operator overcommit CPU", () => {
    expect(checkFit({ ...host, cpuOvercommit: 2 }, { vcpus: 6, memoryBytes: 0, diskBytes: 0 }, { vcpus: 2, memoryBytes: GiB, diskBytes: 0 })).toBeUndefined();
  });
});

describe("ids and passwords", () => {
  it("makes DBC-shaped task ids and login passwords", () => {
    expect(newVmId()).toMatch(/^[1-9A-HJ-NP-Za-km-z]{22}$/);
    for (let i = 0; i < 50; i++) expect(newLoginPassword()).toMatch(/^[A-Za-z][A-Za-z0-9_/+[\]@#^]{15}$/);
  });
});

describe("KeyedMutex", () => {
  it("serializes one key and lets others run", async () => {
    const m = new KeyedMutex();
    const order: string[] = [];
    const slow = (tag: string, ms: number) => () => new Promise<void>((r) => setTimeout(() => (order.push(tag), r()), ms));
    await Promise.all([m.run("a", slow("a1", 30)), m.run("a", slow("a2", 1)), m.run("b", slow("b1", 5))]);
    expect(order).toEqual(["b1", "a1", "a2"]);
    await expect(m.run("a", () => Promise.reject(new Error("x")))).rejects.toThrow("x");
    expect(await m.run("a", async () => 1)).toBe(1); // a failure does not block the key
  });
});

describe("toQemuSpec", () => {
  const spec: VmSpec = {
    imageName: "img.qcow2",
    cpu: { cores: 2, threads: 2 },
    memoryMiB: 512,
    dataDiskBytes: null,
    dataFileName: null,
    biosMode: "uefi",
    os: "linux",
    ports: { ssh: 20001, rdp: null, vnc: 5901, custom: [{ proto: "udp", hostPort: 7000, guestPort: 7001 }] },
    gpuCount: 0,
    startCommand: "",
    desc: "",
    loginUser: "root",
    loginPassword: "p",
    vncPassword: "p",
    multicast: ["230.0.0.1:5558"],
    networkName: null,
  };
  it("forwards ssh and custom ports, adds multicast NICs, picks UEFI", () => {
    const q = toQemuSpec("vm1", spec, { name: "img.qcow2", path: "/i", format: "qcow2", os: "linux", readyMarker: null, loginUser: "root", cloudInit: false }, {
      runDir: "/r",
      accel: "tcg",
      cpuModel: "max",
      disks: [{ id: "vda", path: "/r/vda.qcow2", format: "qcow2" }],
      nics: [{ kind: "user", id: "net0", mac: macFor("vm1"), hostForwards: hostForwardsOf(spec, "127.0.0.1") }],
      kernelArgs: [],
      forwardHost: "127.0.0.1",
      vncPasswordFile: "/r/vnc",
      fwCfg: [],
      ovmfVarsPath: "/r/vars.fd",
    });
    expect(q.cpu).toEqual({ sockets: 1, cores: 2, threads: 2 });
    expect(q.firmware).toMatchObject({ kind: "uefi", varsPath: "/r/vars.fd" });
    expect(q.nics[0]).toMatchObject({
      kind: "user",
      mac: macFor("vm1"),
      hostForwards: [
        { proto: "tcp", hostAddr: "127.0.0.1", hostPort: 20001, guestPort: 22 },
        { proto: "udp", hostAddr: "127.0.0.1", hostPort: 7000, guestPort: 7001 },
      ],
    });
    expect(q.nics[1]).toMatchObject({ kind: "mcast", group: "230.0.0.1:5558" });
    expect(q.vnc).toEqual({ listenAddr: "127.0.0.1", port: 5901, passwordFile: "/r/vnc" });
    expect(macFor("vm1")).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });
});
