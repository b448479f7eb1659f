// "tooldb-dht/webrtc" in browsers: the WebRTC transport on the native RTCPeerConnection.
export { WebRtcNetwork, trackerInfoHash, type WebRtcNetworkOptions } from "../network/webrtc-network.js";
export { DataChannelConnection, type MessageChannel, type DataChannelConnectionOptions } from "../network/data-channel-connection.js";
