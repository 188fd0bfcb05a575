export * from "./db.js";
export * from "./migrations.js";
