/** The types of ToolDb's public surface: its events, peer info, server functions (re-exported by tooldb.ts). */
import type { DialFailedEvent } from "../network/dialer.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { PeerSession } from "../network/peer-session.js";
import type { PeerRecord, ToolDbMessage } from "../records/messages.js";
import type { ToolDbRecord } from "../records/record.js";
import type { PutRefusal } from "./acks.js";

export type ToolDbEvents = {
  ready: [];
  /** tool-db 2.6.6: after `ready`, with the signed-in user's address. */
  init: [address: string | undefined];
  connect: [];
  disconnect: [];
  "peer-connect": [info: PeerInfo];
  "peer-disconnect": [info: PeerInfo & { code: number; reason: string }];
  /**
   * A client: a server it dropped as unresponsive (close code 4012) then
   * served well on a link for `unresponsiveRecovery`: one drop forgiven,
   * `drops` not forgiven yet (server-standing.ts). ServerSelection,
   * DhtPeering and the dialer rank and wait on it one drop less.
   */
  "server-recovered": [info: PeerInfo & { drops: number }];
  /**
   * A verified record changed this node's store (a local write too), as
   * tool-db 2.6.6 emits it: the whole put message, the record in
   * `message.data`; then the id of the peer it came from, if any.
   */
  put: [message: RecordMessage, from: string | undefined];
  /** tool-db 2.6.6: a CRDT change list changed the store (also a `put`). */
  crdtput: [message: RecordMessage];
  /** A verified record changed this node's store: the record itself. */
  data: [record: ToolDbRecord];
  /** tool-db 2.6.6: a record from a peer passed every check (signature, proof of work, custom verifiers), stored or not. */
  verified: [message: RecordMessage];
  /** tool-db 2.6.6: every message a peer sent (after its handshake and duplicate drop), with the peer's id. */
  message: [message: ToolDbMessage, peerId: string];
  /** Something was refused: a record, a frame, a link. Never thrown. */
  refused: [event: RefusalEvent];
  "dial-failed": [event: DialFailedEvent];
  /** Verified server records learned from a linked server (`from`): hybrid discovery and the server mesh. */
  servers: [records: PeerRecord[], from: PeerSession];
  /** A server refused one of this node's puts (acknowledged or not): the record will not be stored there as it is. */
  "put-refused": [refusal: PutRefusal];
  /** tool-db 2.6.6: two sign-ups of one name met here; the oldest wins (`username` is the `==` key). */
  "username-conflict-resolved": [conflict: UsernameConflict];
  /** tool-db 2.6.6: the signed-in user's sign-up lost its name to an older one. */
  "current-user-lost-username": [lost: LostUsername];
  /** tool-db 2.6.6: a sign-up made on this node lost (a server refused it, or an older one arrived). */
  "signup-conflict-detected": [conflict: { username: string; localTimestamp: number; error: string }];
  /** The outbox was full: the oldest unconfirmed write (to this key) is no longer re-sent. */
  "outbox-overflow": [key: string];
  /** A server confirmed that it stored this node's write `h` durably (once per confirming server and answer). */
  "put-confirmed": [event: { h: string; server: string }];
  error: [error: Error];
};

/** A `put` or `crdtPut` message as the `put`, `crdtput` and `verified` events carry it. */
export interface RecordMessage {
  type: "put" | "crdtPut";
  id: string;
  to: string[];
  data: ToolDbRecord;
  ack?: boolean;
}

/** The message a record travelled in, or would have (records from sync come without one). */
export function recordMessage(record: ToolDbRecord, id: string, to: string[] = []): RecordMessage {
  return { type: record.c === null ? "put" : "crdtPut", id, to, data: record };
}

/** 2.6.6's payload; `username` is the key, `==` included, as 2.6.6 sends it. */
export interface UsernameConflict {
  username: string;
  /** "local": what this node held stays; "remote": the incoming record replaced it. */
  winner: "local" | "remote";
  localTimestamp: number;
  remoteTimestamp: number;
  localAddress: string;
  remoteAddress: string;
}

/** 2.6.6's payload; `username` without `==`. */
export interface LostUsername {
  username: string;
  /** When the current user's sign-up was made. */
  timestamp: number;
  winnerTimestamp: number;
  winnerAddress: string;
}

export interface PeerInfo {
  peerId: string;
  address: string;
  isServer: boolean;
  /** The peer signed this session's fresh nonce (false for tool-db 2.6.6 nodes). */
  proven: boolean;
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
    proven: session.proven,
    outgoing: session.outgoing,
    host: session.host,
    port: session.port,
  };
}
