/** The events a network adapter emits (its `TypedEmitter` map). */
import type { DialFailedEvent } from "./dialer.js";
import type { Connection } from "./connection.js";
import type { PeerSession } from "./peer-session.js";

export type NetworkEvents = {
  "session-open": [session: PeerSession];
  /** The session's peer signed this session's fresh nonce (emitted right after its session-open). */
  "session-proven": [session: PeerSession];
  "session-close": [session: PeerSession, code: number, reason: string];
  "dial-failed": [event: DialFailedEvent];
  /**
   * Two links reached the same node (e.g. over two transports); `closed` was dropped with `reason`.
   * `connection` is the link about to be closed (emitted just before its close, so a transport can mark it).
   */
  duplicate: [event: { peer: string; kept: string; closed: string; reason: string; connection: Connection }];
};
