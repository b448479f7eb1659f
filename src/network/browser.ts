// The transports a browser can run (the "browser" condition of "tooldb-dht/network").
// `WebSocketNetwork` is the native-WebSocket transport here, so code written
// for Node (`networkAdapter: WebSocketNetwork`) runs in a page unchanged.
export { Connection, CloseCode, isPermanentRefusal, type ConnectionInfo, type ConnectionEvents } from "./connection.js";
export {
  ToolDbNetworkAdapter,
  type NetworkHost,
  type NetworkOptions,
  type NetworkHostOptions,
  type NetworkAdapterConstructor,
  networkOptionsFrom,
  type NetworkEvents,
  type RefusalEvent,
  type DialFailedEvent,
  type ConnectOptions,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
} from "./network-adapter.js";
export { PeerSession } from "./peer-session.js";
export { Dialer, type DialerHooks } from "./dialer.js";
export { DialTarget, dialKey, type DialState } from "./dial-target.js";
export { BrowserWebSocketNetwork, BrowserWebSocketNetwork as WebSocketNetwork } from "./browser-websocket-network.js";
export { StandardWebSocketConnection, type StandardWebSocket, type StandardWebSocketConstructor } from "./standard-ws-connection.js";
export { LinkGuard, type GuardedLink } from "./link-guard.js";
export { BanList, type Ban, type BanListOptions } from "./ban-list.js";
export { ConnectionGate, type GateRefusal, type GateTicket } from "./connection-gate.js";
export { FairIntake, LinkIntake, type IntakeSink } from "./fair-intake.js";
