/** Network driver: DBC port fields and the host port allocator. Speaks host terms (ports, protocols). */
export * from "./port-spec.js";
export * from "./port-allocator.js";
