import { constants } from "node:fs";
import { access, open, readFile } from "node:fs/promises";

/** The accelerator this host can use, the guest CPU model that goes with it, and why. */
export interface AcceleratorChoice {
  accel: "kvm" | "tcg";
  /** "host" under KVM; "max" under TCG (measured no slower than qemu64 here, and it offers x86-64-v2/v3). */
  cpuModel: string;
  /** One sentence for the operator, e.g. "/dev/kvm is PVM (kvm_pvm loaded): TCG". */
  reason: string;
}

/** Where the probe looks; tests point these at a temp folder. */
export interface AcceleratorProbePaths {
  devKvm?: string;
  cpuinfo?: string;
  /** Present when the kernel's KVM is PVM, which runs only specially built guest kernels. */
  kvmPvmModule?: string;
}

export const TCG_CPU_MODEL = "max";

/**
 * Chooses KVM only when it can really run ordinary guests: /dev/kvm opens read-write, the CPU
 * advertises vmx or svm, and KVM is not PVM (whose /dev/kvm passes every naive check, then
 * aborts Debian kernels). Otherwise TCG.
 */
export async function probeAccelerator(paths: AcceleratorProbePaths = {}): Promise<AcceleratorChoice> {
  const devKvm = paths.devKvm ?? "/dev/kvm";
  const cpuinfo = paths.cpuinfo ?? "/proc/cpuinfo";
  const pvm = paths.kvmPvmModule ?? "/sys/module/kvm_pvm";
  const tcg = (reason: string): AcceleratorChoice => ({ accel: "tcg", cpuModel: TCG_CPU_MODEL, reason });

  try {
    const fh = await open(devKvm, constants.O_RDWR);
    await fh.close();
  } catch (err) {
    return tcg(`${devKvm} cannot be opened read-write (${(err as NodeJS.ErrnoException).code ?? "error"}): TCG`);
  }
  if (await exists(pvm)) return tcg(`${devKvm} is PVM (kvm_pvm loaded): TCG`);
  let flags: string;
  try {
    flags = cpuFlags(await readFile(cpuinfo, "utf8"));
  } catch {
    return tcg(`${cpuinfo} is unreadable: TCG`);
  }
  if (!/(^| )(vmx|svm)( |$)/.test(flags)) return tcg(`the CPU has no vmx or svm flag: TCG`);
  return { accel: "kvm", cpuModel: "host", reason: `${devKvm} is usable and the CPU has ${/(^| )vmx( |$)/.test(flags) ? "vmx" : "svm"}: KVM` };
}

/** The first "flags" line of /proc/cpuinfo. */
function cpuFlags(cpuinfo: string): string {
  return /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "";
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
