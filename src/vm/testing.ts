/** Test helpers for the VM layer. */
import { createLogger } from "../lib/logger.js";
import { openDb } from "../store/db.js";
import { VmRepo } from "./repo.js";
import { VmService, type VmServiceOptions } from "./service.js";
import type { VmSpec } from "./spec.js";

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

/** A VM service over an in-memory store, for its reads: no drivers, so nothing may start a VM. */
export function readOnlyService(): { repo: VmRepo; vms: VmService } {
  const repo = new VmRepo(openDb(":memory:"));
  const opts: Partial<VmServiceOptions> = { repo, dataDir: "/nonexistent", log: createLogger({ level: "silent" }) };
  return { repo, vms: new VmService(opts as VmServiceOptions) };
}
