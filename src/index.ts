// The Node entry: registers Node's default adapters (ws transport, memory store, ECDSA users).
import "./platform/node.js";

export * from "./entries/core.js";
export * from "./stores/index.js";
export * from "./users/index.js";
export * from "./network/index.js";
export * from "./utils/index.js";
export * from "./entries/crdt.js";
export * from "./entries/hybrid.js";
