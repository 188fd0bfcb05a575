export * from "./envelope.js";
export * from "./request.js";
