export * from "./db.js";
export * from "./migrations.js";
export * from "./group-members.js";
