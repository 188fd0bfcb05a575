export * from "./json-file.js";
export * from "./host-files.js";
