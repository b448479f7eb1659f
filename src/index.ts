export * from "./core/index.js";
export * from "./stores/index.js";
export * from "./users/index.js";
export * from "./network/index.js";
