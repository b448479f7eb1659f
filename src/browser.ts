// The browser entry (`"browser"` export condition of "tooldb-dht"): no Node
// built-ins, no ws, no LevelDB. Registers the browser's default adapters.
import "./platform/browser.js";

export * from "./entries/core.js";
export * from "./stores/browser.js";
export * from "./users/index.js";
export * from "./network/browser.js";
export * from "./utils/index.js";
export * from "./entries/crdt.js";
export * from "./entries/hybrid.js";
export * from "./entries/webrtc-browser.js";
