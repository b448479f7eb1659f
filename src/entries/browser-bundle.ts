// The prebuilt page bundle (dist/browser/tooldb-dht.js, build/browser-bundle.ts):
// the browser entry with WebRtcNetwork inside, since a page that imports the
// bundle has no package manager to add the optional WebRTC peers.
export * from "../browser.js";
export * from "./webrtc-browser.js";
