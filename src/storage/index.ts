/** Storage driver: qemu-img wrapper and the on-disk layout of VM volumes. Speaks host paths only. */
export * from "./qemu-img.js";
export * from "./volumes.js";
export * from "./cloud-init-seed.js";
