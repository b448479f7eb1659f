// The browser entry (`"browser"` export condition of "tooldb-dht"): no Node
// built-ins, no ws, no LevelDB. Registers the browser's default adapters.
// WebRtcNetwork is not here: its tracker client is an optional peer
// dependency, so an app that bundles "tooldb-dht" without it still builds;
// bundlers get it from "tooldb-dht/webrtc", pages from the prebuilt bundle
// (entries/browser-bundle.ts).
import "./platform/browser.js";

export * from "./entries/core.js";
export * from "./stores/browser.js";
export * from "./users/index.js";
export * from "./network/browser.js";
export * from "./utils/index.js";
export * from "./entries/crdt.js";
export * from "./entries/hybrid.js";
