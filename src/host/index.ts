/** Host driver: what the machine is (node info, capacity) and which GPUs it has. */
export * from "./host-info.js";
export * from "./gpu-inventory.js";
