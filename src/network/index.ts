// WebSocketNetwork below (the ws transport) takes precedence over browser.js's alias of the same name.
export * from "./browser.js";
export { WebSocketNetwork, DEFAULT_HEARTBEAT_MS } from "./websocket-network.js";
export { WsConnection } from "./ws-connection.js";
export { StreamConnection, type ByteStream, type StreamConnectionOptions } from "./stream-connection.js";
export { FrameDecoder, FrameKind, encodeFrame, encodeMessage, encodeClose } from "./stream-framing.js";
export { TcpNetwork } from "./tcp-network.js";
export { CompositeNetwork, combineNetworks, createNetwork } from "./composite-network.js";
