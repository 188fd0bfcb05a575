/** Test helpers for the VM layer. */
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
