export * from "./common.js";
export * from "./host.js";
export * from "./errors.js";
export * from "./host-vm.js";
