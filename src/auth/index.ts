export * from "./secrets.js";
export * from "./identity.js";
