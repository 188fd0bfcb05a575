export * from "./exec.js";
export * from "./reverter.js";
export * from "./logger.js";
export * from "./units.js";
export * from "./assert-never.js";
export * from "./version.js";
export * from "./private-files.js";
export * from "./kill-points.js";
