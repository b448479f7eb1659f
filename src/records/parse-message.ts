/**
 * Validation of incoming frames: `parseMessage` turns one frame into a
 * ToolDb message (types in messages.ts) or throws BAD_MESSAGE with a reason
 * (INVALID_KEY for a key with a lone surrogate: dropped, not struck).
 */
import { ErrorCode, ToolDbError } from "../base/errors.js";
import { LIMITS, MAX_PEER_URL_LENGTH, type PeerRecord, type ToolDbMessage } from "./messages.js";
import { checkTreeMessage, dropBadTreeFields } from "./tree-messages.js";
import { isBase64, isLowerHex, isWellFormedText } from "../base/text-formats.js";


function syncIds(v: unknown): boolean {
  return Array.isArray(v) && v.length <= LIMITS.maxSyncIds && v.every((id) => isLowerHex(id, 64));
}

/** A store copy's cursor (`syncCopy.after`, `syncRecords.next`): a key as one may be stored. */
export function isCopyCursor(v: unknown): v is string {
  return typeof v === "string" && v.length <= LIMITS.maxKeyLength && isWellFormedText(v);
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

/**
 * A key (or key prefix) field: a string no longer than a key, with no lone
 * surrogate (a store would read it as another key). A lone surrogate throws
 * INVALID_KEY, not BAD_MESSAGE: the message is dropped but its sender is not
 * struck (a tool-db 2.6.6 app that cut an emoji in half asks for such keys,
 * again on every reconnect; see LinkTable.parse).
 */
function keyField(m: Record<string, unknown>, field: string): void {
  const key = str(m, field, LIMITS.maxKeyLength);
  if (!isWellFormedText(key)) throw new ToolDbError(ErrorCode.INVALID_KEY, `${String(m.type)}.${field} is not well-formed UTF-16 (it holds a lone surrogate): dropped`);
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
      keyField(m, "key");
      break;
    case "query":
      keyField(m, "key");
      if (m.after !== undefined) keyField(m, "after");
      break;
    case "queryAck":
      if (!Array.isArray(m.keys) || m.keys.length > LIMITS.maxQueryKeys || !m.keys.every((k) => typeof k === "string")) {
        bad(`queryAck.keys must be an array of at most ${LIMITS.maxQueryKeys} strings`);
      }
      // Keys longer than a key may be (a tool-db 2.6.6 server has no limit) or ill-formed are dropped, not struck;
      // so is an ill-formed `next` (the paging with that peer ends; its keys are kept).
      m.keys = (m.keys as string[]).filter((k) => k.length <= LIMITS.maxKeyLength && isWellFormedText(k));
      if (m.next !== undefined && !isWellFormedText(str(m, "next", LIMITS.maxKeyLength))) delete m.next;
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
      if (!isBase64(m.m)) bad(`${type}.m must be a base64 string`);
      for (const key of ["ms", "n"]) if (m[key] !== undefined && !isSeq(m[key])) bad(`${type}.${key} must be a non-negative integer`);
      if (m.error !== undefined) str(m, "error", 256);
      break;
    case "syncFetch":
    case "syncOffer":
    case "syncOfferAck":
      if (m.ids === undefined && type === "syncOfferAck") m.ids = [];
      if (!syncIds(m.ids)) bad(`${type}.ids must be at most ${LIMITS.maxSyncIds} item ids`);
      if (m.error !== undefined) str(m, "error", 256);
      break;
    case "syncCopy":
      if (m.after !== undefined && !isCopyCursor(m.after)) bad("syncCopy.after must be a well-formed key");
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
      if (m.next !== undefined && !isCopyCursor(m.next)) bad(`${type}.next must be a well-formed key`);
      if (m.error !== undefined) str(m, "error", 256);
      break;
    default:
      if (!checkTreeMessage(m, type)) bad(`unknown message type ${JSON.stringify(type.slice(0, 32))}`);
  }
  return m as unknown as ToolDbMessage;
}
