export * from "./agent.js";
export * from "./state.js";
