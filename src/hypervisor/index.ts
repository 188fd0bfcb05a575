// The hypervisor driver's public face: the VM service imports from here only.
export { HypervisorError, HypervisorErrorCode, type Hypervisor } from "./driver.js";
export { probeAccelerator, TCG_CPU_MODEL, type AcceleratorChoice, type AcceleratorProbePaths } from "./accel.js";
export { QemuHypervisor, type QemuHypervisorOptions } from "./qemu/index.js";
export { buildQemuArgv } from "./qemu/argv.js";
export { QemuSpecError } from "./qemu/validate.js";
export * from "./qemu/spec.js";
export { QEMU_BINARY, isQemuAlive, killQemu, readPidFile, startQemu, waitForExit } from "./qemu/process.js";
export { collectQemuStats, type DiskStats, type NicRef, type NicStats, type QemuStats } from "./qemu/stats.js";
export {
  QmpClient,
  DEFAULT_QMP_TIMEOUT_MS,
  DEFAULT_QMP_TIMEOUTS_MS,
  type QmpConnectOptions,
  type QmpExecuteOptions,
  type QmpGreeting,
} from "./qemu/qmp/client.js";
export { QmpError, QmpErrorCode, isQmpError, type QmpEvent } from "./qemu/qmp/errors.js";
