export * from "./secrets.js";
export * from "./identity.js";
export * from "./signature.js";
export * from "./renter.js";
export * from "./nonce-repo.js";
export * from "./session-repo.js";
export * from "./rental-ledger.js";
export * from "./authorize.js";
