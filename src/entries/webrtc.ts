// "tooldb-dht/webrtc" in Node: the WebRTC transport with WebTorrent-tracker
// discovery, on node-datachannel (loaded here). Browsers get ./browser.js.
import { fireIceCompleteInNode } from "../network/node-ice-complete.js";

fireIceCompleteInNode();

export * from "./webrtc-browser.js";
