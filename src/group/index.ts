export * from "./membership.js";
export * from "./local-address.js";
export * from "./liveness.js";
export * from "./heartbeat.js";
export * from "./forward.js";
export * from "./member-repo.js";
