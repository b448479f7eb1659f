/** The types of ToolDb's public surface: its events, peer info, server functions (re-exported by tooldb.ts). */
import type { DialFailedEvent } from "../network/dialer.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { PeerSession } from "../network/peer-session.js";
import type { PeerRecord } from "../records/messages.js";
import type { ToolDbRecord } from "../records/record.js";

export type ToolDbEvents = {
  ready: [];
  connect: [];
  disconnect: [];
  "peer-connect": [info: PeerInfo];
  "peer-disconnect": [info: PeerInfo & { code: number; reason: string }];
  /** A verified record changed this node's store. */
  put: [record: ToolDbRecord, from: string | undefined];
  data: [record: ToolDbRecord];
  /** Something was refused: a record, a frame, a link. Never thrown. */
  refused: [event: RefusalEvent];
  "dial-failed": [event: DialFailedEvent];
  /** Verified server records learned from peers (hybrid discovery). */
  servers: [records: PeerRecord[]];
  /** The outbox was full: the oldest unconfirmed write (to this key) is no longer re-sent. */
  "outbox-overflow": [key: string];
  error: [error: Error];
};

export interface PeerInfo {
  peerId: string;
  address: string;
  isServer: boolean;
  outgoing: boolean;
  host?: string;
  port?: number;
}

export type ServerFunction = (args: any) => Promise<unknown> | unknown;

export interface FunctionReturn {
  code: "OK" | "ERR" | "NOT_FOUND" | string;
  return: unknown;
}

export function peerInfo(session: PeerSession): PeerInfo {
  return {
    peerId: session.clientId,
    address: session.address,
    isServer: session.isServer,
    outgoing: session.outgoing,
    host: session.host,
    port: session.port,
  };
}
