export * from "./common.js";
export * from "./host.js";
export * from "./errors.js";
export * from "./host-vm.js";
export * from "./host-rent.js";
export * as v1 from "./v1/index.js";
