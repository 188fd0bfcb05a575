import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { probeAccelerator } from "./accel.js";
import { makeTempDir } from "./qemu/testing.js";

describe("probeAccelerator with faked /dev, /proc and /sys", () => {
  let dir: string;
  let paths: { devKvm: string; cpuinfo: string; kvmPvmModule: string };

  beforeEach(async () => {
    dir = await makeTempDir();
    paths = { devKvm: join(dir, "kvm"), cpuinfo: join(dir, "cpuinfo"), kvmPvmModule: join(dir, "kvm_pvm") };
    await writeFile(paths.devKvm, "");
    await writeFile(paths.cpuinfo, "processor\t: 0\nflags\t\t: fpu vme de pse vmx sse2\n\nprocessor\t: 1\nflags\t\t: fpu vmx\n");
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("chooses KVM with the host CPU when everything checks out", async () => {
    expect(await probeAccelerator(paths)).toEqual({ accel: "kvm", cpuModel: "host", reason: `${paths.devKvm} is usable and the CPU has vmx: KVM` });
  });

  it("accepts AMD's svm too", async () => {
    await writeFile(paths.cpuinfo, "flags\t\t: fpu svm lm\n");
    expect((await probeAccelerator(paths)).accel).toBe("kvm");
  });

  it("refuses KVM when /dev/kvm is missing", async () => {
    await rm(paths.devKvm);
    const r = await probeAccelerator(paths);
    expect(r).toMatchObject({ accel: "tcg", cpuModel: "max" });
    expect(r.reason).toContain("ENOENT");
  });

  it("refuses KVM when it is PVM", async () => {
    await mkdir(paths.kvmPvmModule);
    expect(await probeAccelerator(paths)).toEqual({ accel: "tcg", cpuModel: "max", reason: `${paths.devKvm} is PVM (kvm_pvm loaded): TCG` });
  });

  it("refuses KVM without vmx or svm (a flag must match whole, not inside another word)", async () => {
    await writeFile(paths.cpuinfo, "flags\t\t: fpu vmxnope svmish\n");
    expect(await probeAccelerator(paths)).toMatchObject({ accel: "tcg", reason: "the CPU has no vmx or svm flag: TCG" });
  });
});

describe("probeAccelerator on this machine", () => {
  // Some of these machines load kvm_pvm without a /dev/kvm at all: that one is refused for ENOENT first.
  it.runIf(existsSync("/sys/module/kvm_pvm") && existsSync("/dev/kvm"))("sees that /dev/kvm is PVM and picks TCG", async () => {
    expect(await probeAccelerator()).toEqual({ accel: "tcg", cpuModel: "max", reason: "/dev/kvm is PVM (kvm_pvm loaded): TCG" });
  });

  it("gives a consistent answer", async () => {
    const r = await probeAccelerator();
    expect(r.cpuModel).toBe(r.accel === "kvm" ? "host" : "max");
    expect(r.reason).toMatch(/: (KVM|TCG)$/);
  });
});
