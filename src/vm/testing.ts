/** Test helpers for the VM layer: a whole layer over a fake hypervisor, a real store and real qemu-img. */
import { effectiveIoLimits, type IoLimits } from "./io-limits.js";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeHypervisor } from "../hypervisor/fake.js";
import { createLogger } from "../lib/logger.js";
import { PortAllocator } from "../network/port-allocator.js";
import { createDisk } from "../storage/qemu-img.js";
import { openDb, type Db } from "../store/db.js";
import { ImageCatalog } from "./images.js";
import type { PortRangeKind } from "./ports.js";
import { VmRepo, type VmRecord } from "./repo.js";
import type { HostCapacity } from "./resources.js";
import type { VmSpec } from "./spec.js";
import { createVms, type Vms } from "./vms.js";
import type { VmCreateRequest } from "./create-request.js";
import { DiskService } from "../disk/service.js";
import { ImageCenter } from "../image/center.js";
import { SnapshotService } from "../snapshot/service.js";
import { UserModeNetwork } from "./guest-network.js";
import type { GuestGpus } from "./guest-gpus.js";

/** A VM spec as batu stores one for a small linux task; `desc` tells them apart. */
export function testSpec(desc: string): VmSpec {
  return {
    imageName: "batu-demo.qcow2",
    cpu: { cores: 1, threads: 1 },
    memoryMiB: 512,
    dataDiskBytes: null,
    dataFileName: null,
    biosMode: "legacy",
    os: "linux",
    ports: { ssh: null, rdp: null, vnc: 5900, custom: [] },
    gpuCount: 0,
    startCommand: "",
    desc,
    loginUser: "root",
    loginPassword: "secret-password",
    vncPassword: "secret-p",
    multicast: [],
    networkName: null,
  };
}

/** A request for a small linux VM of the test image; `id` fixed so a test can name it. */
export function testCreateRequest(id: string, over: Partial<VmCreateRequest> = {}): VmCreateRequest {
  return {
    id,
    nickname: id,
    owner: "alice",
    imageName: TEST_IMAGE,
    cores: 1,
    vcpus: 1,
    memoryBytes: 512 * 2 ** 20,
    dataDiskBytes: null,
    dataFileName: null,
    biosMode: "legacy",
    os: "linux",
    customPorts: [],
    gpuCount: 0,
    startCommand: "",
    desc: "",
    multicast: [],
    networkName: null,
    ...over,
  };
}

/** The name of the image `testVms` ships: an 8 MiB qcow2 whose guest prints `TEST-READY` when up. */
export const TEST_IMAGE = "test-image.qcow2";
export const TEST_READY_MARKER = "TEST-READY";

/** A host of 4 threads and 8 GiB (1 GiB kept for itself) with a 100 GiB disk, all free. */
export const TEST_HOST: HostCapacity = {
  cpuThreads: 4,
  memoryBytes: 8 * 2 ** 30,
  diskTotalBytes: 100 * 2 ** 30,
  diskFreeBytes: 100 * 2 ** 30,
  diskOvercommit: 1,
  cpuOvercommit: 1,
  memoryReserveBytes: 2 ** 30,
};

const quietLog = () => createLogger({ level: "silent" });

/** The VM layer over an in-memory store, for its reads: nothing in it can boot (no image, no data dir). */
export function readOnlyVms(db: Db = openDb(":memory:"), now?: () => Date): Vms & { repo: VmRepo; disks: DiskService; snapshots: SnapshotService; images: ImageCenter } {
  const repo = new VmRepo(db, now);
  const hypervisor = new FakeHypervisor();
  const vms = createVms({
    dataDir: "/nonexistent",
    hypervisor,
    repo,
    images: new ImageCatalog([]),
    ports: new PortAllocator<PortRangeKind>({ ranges: { forward: { min: 20000, max: 20099 }, vnc: { min: 5900, max: 5999 } } }),
    accel: { accel: "tcg", cpuModel: "max", reason: "test" },
    capacity: async () => TEST_HOST,
    forwardHost: "127.0.0.1",
    network: new UserModeNetwork(hypervisor, "127.0.0.1", repo),
    shutdownTimeoutMs: 1000,
    log: quietLog(),
  });
  const disks = new DiskService({ dataDir: "/nonexistent", vms: vms.service, repo, hypervisor, capacity: async () => TEST_HOST, detachTimeoutMs: 1000 });
  const snapshots = new SnapshotService({ db, vms: vms.service, repo, images: new ImageCatalog([]), hypervisor, dataDir: "/nonexistent", backupTimeoutMs: 1000, capacity: async () => TEST_HOST });
  // No image server and no cache: these tests read VMs, never images.
  const noTransport = { list: unavailable, download: unavailable, upload: unavailable };
  const images = new ImageCenter({ cache: "/nonexistent", servers: () => [], transports: { http: noTransport, rsync: noTransport }, inUse: () => undefined });
  return { ...vms, repo, disks, snapshots, images };
}

async function unavailable(): Promise<never> {
  throw new Error("read-only test VMs have no image transport");
}

export interface TestVms extends Vms {
  repo: VmRepo;
  hypervisor: FakeHypervisor;
  dataDir: string;
  /** The store (a test may play what a killed agent left in it). */
  db: Db;
  /** The agent stops (VMs keep running) and a fresh VM layer starts over the same store, data dir and hypervisor. */
  restart(): Promise<Vms>;
  close(): Promise<void>;
}

/**
 * A whole VM layer: a real SQLite file, real qemu-img making real overlays in a temporary data dir,
 * a real port allocator (its host probe answering "free": no port is bound here), and a fake
 * hypervisor whose guests answer QMP on real sockets.
 */
export async function testVms(
  opts: { shutdownTimeoutMs?: number; host?: Partial<HostCapacity>; gpus?: (db: Db) => GuestGpus; ioDefaults?: IoLimits; admission?: () => string | null } = {},
): Promise<TestVms> {
  const dataDir = await mkdtemp(join(tmpdir(), "batu-vms-"));
  const imagesDir = join(dataDir, "shipped");
  mkdirSync(imagesDir);
  await createDisk(join(imagesDir, TEST_IMAGE), 8 * 2 ** 20, "qcow2");
  await writeFile(
    join(imagesDir, TEST_IMAGE.replace(/\.qcow2$/, ".json")),
    JSON.stringify({ name: TEST_IMAGE, format: "qcow2", boot: "disk", ready_marker: TEST_READY_MARKER, login_user: "tester" }),
  );
  const cache = join(dataDir, "images");
  mkdirSync(cache);
  const db = openDb(join(dataDir, "batu.db"));
  const repo = new VmRepo(db);
  const hypervisor = new FakeHypervisor({ readyMarker: TEST_READY_MARKER });
  const make = (): Vms =>
    createVms({
      dataDir,
      hypervisor,
      repo,
      images: new ImageCatalog([cache, imagesDir]),
      ports: new PortAllocator<PortRangeKind>({
        ranges: { forward: { min: 20000, max: 20009 }, vnc: { min: 5900, max: 5904 } },
        probe: async () => true,
      }),
      accel: { accel: "tcg", cpuModel: "max", reason: "test" },
      capacity: async () => ({ ...TEST_HOST, ...opts.host }),
      forwardHost: "127.0.0.1",
      network: new UserModeNetwork(hypervisor, "127.0.0.1", repo),
      ...(opts.gpus ? { gpus: opts.gpus(db) } : {}),
      ...(opts.admission ? { admission: opts.admission } : {}),
      ...(opts.ioDefaults ? { ioLimits: (vm: VmRecord) => effectiveIoLimits(vm.spec.io, opts.ioDefaults!) } : {}),
      shutdownTimeoutMs: opts.shutdownTimeoutMs ?? 2000,
      log: quietLog(),
    });
  let current = make();
  return {
    get service() {
      return current.service;
    },
    get queries() {
      return current.queries;
    },
    repo,
    hypervisor,
    dataDir,
    db,
    async restart() {
      await current.service.close();
      current = make();
      return current;
    },
    async close() {
      await current.service.close();
      for (const runDir of hypervisor.running()) await hypervisor.crash(runDir);
      db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
