// WebSocketNetwork below (the ws transport) takes precedence over browser.js's alias of the same name.
export * from "./browser.js";
export { WebSocketNetwork, DEFAULT_HEARTBEAT_MS } from "./websocket-network.js";
export { WsConnection } from "./ws-connection.js";
