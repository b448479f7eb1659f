import type { TreeMessage } from "./tree-messages.js";

/**
 * ToolDb wire messages: JSON text frames `{type, id, to, ...}`. `to` lists the
 * client ids a message already passed through (loop prevention).
 */
export interface PeerRecord {
  topic: string;
  timestamp: number;
  host: string;
  port: number;
  /** tooldb-dht extension: the ws:// or wss:// URL browsers dial (signed with the rest). */
  url?: string;
  address: string;
  sig: string;
}

interface Base {
  id: string;
  to: string[];
}

export interface PingMessage extends Base {
  type: "ping";
  clientId: string;
  isServer: boolean;
  peer: PeerRecord;
  /** tooldb-dht extension: wire extensions the node speaks (2.6.6 sends none and ignores the field). */
  caps?: string[];
  /** tooldb-dht extension: a fresh challenge the answering node signs in its pong (see network/handshake.ts). */
  nonce?: string;
}

export interface PongMessage extends Base {
  type: "pong";
  clientId: string;
  isServer: boolean;
  servers: PeerRecord[];
  /** tooldb-dht extension: the answering node's own fresh record (2.6.6 omits it). */
  peer?: PeerRecord;
  /** tooldb-dht extension: wire extensions the node speaks (see CAPABILITIES). */
  caps?: string[];
  /** tooldb-dht extension: the ping's nonce and `peer` signed by the answering node (handshakeProofDigest "pong"). */
  proof?: string;
  /** tooldb-dht extension: a fresh challenge for the dialing node, answered by a `proof` message. */
  nonce?: string;
}

/**
 * tooldb-dht extension: the dialing node's answer to the pong's nonce, its
 * ping's `peer` and that nonce signed (handshakeProofDigest "proof"). Sent
 * only to nodes whose pong carried a nonce; it completes the handshake.
 */
export interface ProofMessage extends Base {
  type: "proof";
  sig: string;
}

/** tooldb-dht extension: the answering node checked the proof and opened its session; the dialer opens its own. */
export interface ProofAckMessage extends Base {
  type: "proofAck";
}

export interface PutMessage extends Base {
  type: "put";
  data: unknown;
  /** tooldb-dht extension: the sender asks a server to confirm with `putAck` (2.6.6 ignores it). See acks.ts. */
  ack?: boolean;
}

/** tooldb-dht extension: a server confirms puts it stored durably (`stored`: record hashes) or refused. */
export interface PutAckMessage extends Base {
  type: "putAck";
  stored: string[];
  /** `code`: STORAGE_FAILED when the server's own storage failed (the writer keeps the put and retries); absent for refusals of the record. */
  refused?: Array<{ h: string; reason: string; code?: string }>;
}

export interface GetMessage extends Base {
  type: "get";
  key: string;
}

/** A signed CRDT change list (`data.c` set); answers a crdtGet with its id. */
export interface CrdtPutMessage extends Base {
  type: "crdtPut";
  data: unknown;
  /** As on put (tooldb-dht extension). */
  ack?: boolean;
}

export interface CrdtGetMessage extends Base {
  type: "crdtGet";
  key: string;
}

export interface SubscribeMessage extends Base {
  type: "subscribe";
  key: string;
}

/**
 * Paged key queries (capability `qpage1`): an answer that could not hold every
 * key names the last one it holds as `next`, and the asker asks that peer
 * again with `after: next`. Peers without the capability (tool-db 2.6.6) get
 * one answer that fits a frame, as before.
 */
export const QUERY_PAGES_CAPABILITY = "qpage1";

export interface QueryMessage extends Base {
  type: "query";
  key: string;
  /** tooldb-dht extension (qpage1): keys after this one. */
  after?: string;
}

export interface QueryAckMessage extends Base {
  type: "queryAck";
  keys: string[];
  /** tooldb-dht extension (qpage1): more keys follow this one; ask again with `after`. */
  next?: string;
}

export interface FunctionMessage extends Base {
  type: "function";
  function: string;
  args: unknown;
}

export interface FunctionReturnMessage extends Base {
  type: "functionReturn";
  code: string;
  return: unknown;
}

/**
 * Range-based reconciliation between tooldb-dht servers (src/sync), sent only
 * to peers that listed the `rbsr1` capability. `m` is a negentropy V1 message
 * in base64; `ids` are item ids (64 hex); an `error` in a reply ends the run.
 */
export interface SyncRangeMessage extends Base {
  type: "syncRange" | "syncRangeAck";
  m: string;
  /** syncRangeAck: how long the responder worked on the request (ms; older peers send none). */
  ms?: number;
  /** syncRangeAck: the responder's store size in index items (older peers send none): sizes the asker's budget for its answers. */
  n?: number;
  error?: string;
}

export interface SyncFetchMessage extends Base {
  type: "syncFetch";
  ids: string[];
}

/** `syncRecords` answers a fetch (`more`: ids to ask again) or a copy (`next`: ask again after this key); `syncPush` sends records, answered by an empty `syncPushAck`. */
export interface SyncRecordsMessage extends Base {
  type: "syncRecords" | "syncPush" | "syncPushAck";
  records: unknown[];
  more?: string[];
  next?: string;
  error?: string;
}

/** A page of the responder's store after key `after`, in key order (capability `copy1`, src/node/sync/store-copy.ts). */
export interface SyncCopyMessage extends Base {
  type: "syncCopy";
  after?: string;
}

/**
 * The change feed (capability `chg1`, see src/node/sync/change-feed.ts): `syncChanges`
 * asks for the ids stored after number `s` of the responder's numbering `e`;
 * the ack gives them a page at a time, the responder's own numbering and head,
 * and under `mine` the checkpoint it keeps of the asker. `syncOffer` lists ids,
 * answered by those the responder lacks; `syncCommit` sets the checkpoint the
 * responder keeps of the asker.
 */
export interface SyncChangesMessage extends Base {
  type: "syncChanges";
  e?: string;
  s?: number;
}

export interface SyncChangesAckMessage extends Base {
  type: "syncChangesAck";
  e: string;
  head: number;
  ids: string[];
  next: number;
  more: boolean;
  mine?: { e: string; s: number };
  error?: string;
}

export interface SyncOfferMessage extends Base {
  type: "syncOffer" | "syncOfferAck";
  ids: string[];
  error?: string;
}

export interface SyncCommitMessage extends Base {
  type: "syncCommit" | "syncCommitAck";
  e?: string;
  s?: number;
  error?: string;
}

export type SyncMessage = SyncRangeMessage | SyncFetchMessage | SyncCopyMessage | SyncRecordsMessage | SyncChangesMessage | SyncChangesAckMessage | SyncOfferMessage | SyncCommitMessage;

export type ToolDbMessage =
  | PingMessage
  | PongMessage
  | ProofMessage
  | ProofAckMessage
  | PutMessage
  | GetMessage
  | CrdtPutMessage
  | CrdtGetMessage
  | SubscribeMessage
  | QueryMessage
  | QueryAckMessage
  | FunctionMessage
  | FunctionReturnMessage
  | PutAckMessage
  | TreeMessage
  | SyncMessage;

export type MessageType = ToolDbMessage["type"];

/** The key of the record a put or crdtPut frame carries (undefined for anything else). */
export function putKey(message: ToolDbMessage): string | undefined {
  if (message.type !== "put" && message.type !== "crdtPut") return undefined;
  const k = (message.data as { k?: unknown } | null | undefined)?.k;
  return typeof k === "string" ? k : undefined;
}

/** Outgoing messages before the network fills in `to`. */
export type OutgoingMessage = ToolDbMessage extends infer M ? (M extends ToolDbMessage ? Omit<M, "to"> & { to?: string[] } : never) : never;

export const LIMITS = {
  maxIdLength: 64,
  /** Entries of `to` a frame this node sends carries at most: the latest hops (see hops.ts). */
  maxHops: 16,
  /** Entries of `to` accepted in a frame: older nodes append a hop without a bound. */
  maxHopsAccepted: 64,
  maxHopIdLength: 128,
  maxKeyLength: 1024,
  maxServersInPong: 64,
  maxQueryKeys: 10_000,
  maxFunctionNameLength: 256,
  maxHostLength: 255,
  /** Hashes confirmed in one putAck. */
  maxAcks: 1024,
  maxCaps: 16,
  maxSyncIds: 4096,
} as const;

/** Longest URL accepted in a peer record (a wire rule: peer-url.ts checks what a URL may name). */
export const MAX_PEER_URL_LENGTH = 512;
