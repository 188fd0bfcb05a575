export * from "./membership.js";
export * from "./local-address.js";
