import { ErrorCode, ToolDbError } from "../base/errors.js";
import { type TreeMessage, checkTreeMessage, dropBadTreeFields } from "./tree-messages.js";

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
  error?: string;
}

export interface SyncFetchMessage extends Base {
  type: "syncFetch";
  ids: string[];
}

/** `syncRecords` answers a fetch (`more`: ids to ask again); `syncPush` sends records, answered by an empty `syncPushAck`. */
export interface SyncRecordsMessage extends Base {
  type: "syncRecords" | "syncPush" | "syncPushAck";
  records: unknown[];
  more?: string[];
  error?: string;
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

export type SyncMessage = SyncRangeMessage | SyncFetchMessage | SyncRecordsMessage | SyncChangesMessage | SyncChangesAckMessage | SyncOfferMessage | SyncCommitMessage;

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

const ITEM_ID = /^[0-9a-f]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function syncIds(v: unknown): boolean {
  return Array.isArray(v) && v.length <= LIMITS.maxSyncIds && v.every((id) => typeof id === "string" && ITEM_ID.test(id));
}

function isSeq(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function checkChangesAck(m: Record<string, unknown>): void {
  if (m.error !== undefined) {
    str(m, "error", 256);
    m.ids ??= [];
  }
  if (m.ids === undefined) m.ids = [];
  m.e ??= "";
  str(m, "e", LIMITS.maxIdLength);
  for (const field of ["head", "next"]) {
    m[field] ??= 0;
    if (!isSeq(m[field])) bad(`syncChangesAck.${field} must be a non-negative integer`);
  }
  if (!syncIds(m.ids)) bad(`syncChangesAck.ids must be at most ${LIMITS.maxSyncIds} item ids`);
  m.more = m.more === true;
  const mine = m.mine;
  if (mine !== undefined && !(isObject(mine) && typeof mine.e === "string" && mine.e.length <= LIMITS.maxIdLength && isSeq(mine.s))) bad("syncChangesAck.mine must be {e, s}");
}

const NONCE = /^[0-9a-f]{32,128}$/;

/** A challenge nonce; a malformed one counts as none (the handshake is then a legacy one, unproven). */
function nonceOf(v: unknown): string | undefined {
  return typeof v === "string" && NONCE.test(v) ? v : undefined;
}

/** Capabilities are advisory: a malformed list counts as none. */
function capsOf(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.filter((c): c is string => typeof c === "string" && c.length <= 32).slice(0, LIMITS.maxCaps);
}

/** Message types of tool-db that this node knows but deliberately ignores (none since CRDTs are supported). */
export const IGNORED_TYPES = new Set<string>();

function bad(reason: string): never {
  throw new ToolDbError(ErrorCode.BAD_MESSAGE, reason);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(m: Record<string, unknown>, field: string, max: number): string {
  const v = m[field];
  if (typeof v !== "string" || v.length > max) bad(`field ${field} must be a string of at most ${max} chars`);
  return v;
}

export function isPeerRecordShape(v: unknown): v is PeerRecord {
  return (
    isObject(v) &&
    typeof v.topic === "string" &&
    v.topic.length <= 512 &&
    typeof v.timestamp === "number" &&
    Number.isFinite(v.timestamp) &&
    typeof v.host === "string" &&
    v.host.length <= LIMITS.maxHostLength &&
    typeof v.port === "number" &&
    Number.isInteger(v.port) &&
    v.port >= 0 &&
    v.port <= 65535 &&
    (v.url === undefined || (typeof v.url === "string" && v.url.length <= MAX_PEER_URL_LENGTH)) &&
    typeof v.address === "string" &&
    v.address.length <= 128 &&
    typeof v.sig === "string" &&
    v.sig.length <= 256
  );
}

function isHashList(v: unknown): v is string[] {
  return Array.isArray(v) && v.length <= LIMITS.maxAcks && v.every((h) => typeof h === "string" && h.length <= 128);
}

function checkPutAck(m: Record<string, unknown>): void {
  if (!isHashList(m.stored)) bad(`putAck.stored must be an array of at most ${LIMITS.maxAcks} hashes`);
  if (m.refused === undefined) return;
  const refused = m.refused;
  if (!Array.isArray(refused) || refused.length > LIMITS.maxAcks) bad("putAck.refused must be an array");
  for (const r of refused) {
    if (!isObject(r) || typeof r.h !== "string" || r.h.length > 128 || typeof r.reason !== "string" || r.reason.length > 512 || (r.code !== undefined && (typeof r.code !== "string" || r.code.length > 64))) {
      bad("putAck.refused entries are {h, reason, code?} strings");
    }
  }
}

/**
 * Parses and validates one frame. Throws ToolDbError(BAD_MESSAGE) with a
 * reason; returns null for known-but-ignored types. Unknown types throw too,
 * with a reason that says so.
 */
export function parseMessage(frame: string): ToolDbMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(frame);
  } catch {
    bad("malformed JSON");
  }
  if (!isObject(m)) bad("a message must be a JSON object");
  const type = m.type;
  if (typeof type !== "string") bad("field type must be a string");
  if (IGNORED_TYPES.has(type)) return null;
  str(m, "id", LIMITS.maxIdLength);
  if (m.to === undefined) m.to = [];
  const to = m.to;
  if (!Array.isArray(to) || to.length > LIMITS.maxHopsAccepted || !to.every((x) => typeof x === "string" && x.length <= LIMITS.maxHopIdLength)) {
    bad(`field to must be an array of at most ${LIMITS.maxHopsAccepted} short strings`);
  }
  switch (type) {
    case "ping":
      str(m, "clientId", LIMITS.maxHopIdLength);
      if (typeof m.isServer !== "boolean") m.isServer = Boolean(m.isServer);
      if (!isPeerRecordShape(m.peer)) bad("ping.peer must be a peer record");
      m.caps = capsOf(m.caps);
      m.nonce = nonceOf(m.nonce);
      break;
    case "pong":
      str(m, "clientId", LIMITS.maxHopIdLength);
      if (typeof m.isServer !== "boolean") m.isServer = Boolean(m.isServer);
      if (m.servers === undefined) m.servers = [];
      if (!Array.isArray(m.servers)) bad("pong.servers must be an array");
      // Keep only well-formed records, bounded; each is verified before use.
      m.servers = (m.servers as unknown[]).filter(isPeerRecordShape).slice(0, LIMITS.maxServersInPong);
      if (m.peer !== undefined && !isPeerRecordShape(m.peer)) bad("pong.peer must be a peer record");
      m.caps = capsOf(m.caps);
      m.nonce = nonceOf(m.nonce);
      if (m.proof !== undefined && (typeof m.proof !== "string" || m.proof.length > 256)) m.proof = undefined;
      break;
    case "proof":
      str(m, "sig", 256);
      break;
    case "proofAck":
      break;
    case "put":
    case "crdtPut":
      if (!isObject(m.data)) bad(`${type}.data must be a record object`);
      dropBadTreeFields(m);
      break;
    case "get":
    case "crdtGet":
    case "subscribe":
      str(m, "key", LIMITS.maxKeyLength);
      break;
    case "query":
      str(m, "key", LIMITS.maxKeyLength);
      if (m.after !== undefined) str(m, "after", LIMITS.maxKeyLength);
      break;
    case "queryAck":
      if (!Array.isArray(m.keys) || m.keys.length > LIMITS.maxQueryKeys || !m.keys.every((k) => typeof k === "string")) {
        bad("queryAck.keys must be an array of strings");
      }
      if (m.next !== undefined) str(m, "next", LIMITS.maxKeyLength);
      break;
    case "function":
      str(m, "function", LIMITS.maxFunctionNameLength);
      break;
    case "functionReturn":
      str(m, "code", 32);
      break;
    case "putAck":
      checkPutAck(m);
      break;
    case "syncRange":
    case "syncRangeAck":
      if (typeof m.m !== "string" || !BASE64.test(m.m)) bad(`${type}.m must be a base64 string`);
      if (m.error !== undefined) str(m, "error", 256);
      break;
    case "syncFetch":
    case "syncOffer":
    case "syncOfferAck":
      if (m.ids === undefined && type === "syncOfferAck") m.ids = [];
      if (!syncIds(m.ids)) bad(`${type}.ids must be at most ${LIMITS.maxSyncIds} item ids`);
      if (m.error !== undefined) str(m, "error", 256);
      break;
    case "syncChanges":
    case "syncCommit":
    case "syncCommitAck":
      if (m.e !== undefined) str(m, "e", LIMITS.maxIdLength);
      if (m.s !== undefined && !isSeq(m.s)) bad(`${type}.s must be a non-negative integer`);
      if (type === "syncCommit" && (m.e === undefined || m.s === undefined)) bad("syncCommit needs e and s");
      if (m.error !== undefined) str(m, "error", 256);
      break;
    case "syncChangesAck":
      checkChangesAck(m);
      break;
    case "syncRecords":
    case "syncPush":
    case "syncPushAck":
      if (m.records === undefined) m.records = [];
      if (!Array.isArray(m.records) || m.records.length > LIMITS.maxSyncIds) bad(`${type}.records must be an array of at most ${LIMITS.maxSyncIds}`);
      if (m.more !== undefined && !syncIds(m.more)) bad(`${type}.more must be item ids`);
      if (m.error !== undefined) str(m, "error", 256);
      break;
    default:
      if (!checkTreeMessage(m, type)) bad(`unknown message type ${JSON.stringify(type.slice(0, 32))}`);
  }
  return m as unknown as ToolDbMessage;
}
