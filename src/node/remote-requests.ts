/**
 * Requests this node sends to its peers and how their replies are awaited
 * (by message id, bounded by a timeout): gets (plain and CRDT), key queries
 * and server functions.
 */
import type { NodeContext } from "./node-context.js";
import type { FunctionReturn } from "./node-types.js";
import { ErrorCode, ToolDbError } from "../base/errors.js";
import { randomId } from "../base/random.js";
import type { ToolDbRecord } from "../records/record.js";
import type { ToolDbMessage } from "../records/messages.js";
import type { PeerSession } from "../network/peer-session.js";
import { awaitNewest } from "./get-replies.js";
import { checkTimeout, stringArgument } from "./api-arguments.js";

/** Pages asked of one peer for one query, and keys collected in all, at most (a peer cannot keep a query going forever). */
const MAX_QUERY_PAGES = 1000;
const MAX_QUERY_KEYS = 1_000_000;
/** Characters of the keys collected for one query at most (keys may be 1,024 characters: a peer could make 1,000,000 of them a gigabyte). */
const MAX_QUERY_CHARS = 64 * 1024 * 1024;
/** A query's paging ends this many times its `timeoutMs` after it was sent, whatever the pages. */
const QUERY_PAGING_TIMEOUTS = 30;
/**
 * A page that says more follow holds at least this many keys or key bytes:
 * a peer pages only when a frame is full (protocol.ts onQuery). A peer that
 * dribbles one key a page just under `timeoutMs` kept an outside check's
 * `queryKeys(prefix, false, 1000)` going for minutes.
 */
const FULL_PAGE_KEYS = 1000;
const FULL_PAGE_BYTES = 16 * 1024;

export class RemoteRequests {
  constructor(private readonly db: NodeContext) {}

  /**
   * The stored record (for a CRDT key, the whole document) under `finalKey`.
   * Without a local copy: every peer is asked (as tool-db 2.6.6 does); the
   * newest verified reply for that key (see get-replies.ts), else what
   * arrived meanwhile. With one and a server linked (a fresh read): only the
   * servers are asked, and the store's
   * record is returned once a reply was merged (the newer record wins; a
   * CRDT document gains the other changes) or after `timeoutMs`. With a local
   * copy and no server linked (offline, or only clients): the local copy at
   * once. So a server reading a key it holds asks its server peers, never
   * its clients. The record read is emitted as `data`, as tool-db 2.6.6 does
   * for every read that finds one, unless this read changed the store: the
   * store's change emitted it already.
   */
  async getRecord(finalKey: string, timeoutMs: number, type: "get" | "crdtGet"): Promise<ToolDbRecord | undefined> {
    checkTimeout("timeoutMs", timeoutMs);
    const db = this.db;
    const local = await db.records.get(finalKey);
    const what = type === "get" ? "getData" : "getCrdt";
    closedCheck(db, what);
    if (db.network.peerCount === 0) return this.read(local, local);
    const id = randomId();
    let asked = 0;
    const reply = new Promise<ToolDbRecord | undefined>((resolve) => {
      const wait = awaitNewest(db, id, finalKey, timeoutMs, resolve, undefined, local?.h);
      const message = { type, id, key: finalKey };
      // A tool-db 2.6.6 peer that sent this key on the link is pinged first, or it would not answer (legacy-reasks.ts).
      let later = 0;
      const now = (s: PeerSession) => {
        if (db.reasks.mayAsk(s, finalKey, () => void db.network.sendToAll(message, (x) => x === s))) return true;
        later++;
        return false;
      };
      asked = (local ? db.network.sendToServers(message, now) : db.network.sendToAll(message, now)) + later;
      wait.asked(asked);
    });
    if (local && asked === 0) return this.read(local, local);
    const answer = await reply;
    closedCheck(db, what); // close() ends the wait: not a "no such key" null
    return this.read((await db.records.get(finalKey).catch(() => undefined)) ?? answer, local);
  }

  /** `found`, emitted as `data` when it is what the store held before the read (`before`). */
  private read(found: ToolDbRecord | undefined, before: ToolDbRecord | undefined): ToolDbRecord | undefined {
    if (found !== undefined && found.h === before?.h && !this.db.isClosed) this.db.emit("data", found);
    return found;
  }

  /**
   * Keys starting with `prefix`, from the local store and every peer that
   * answers within `timeoutMs`; a peer whose answer did not hold every key
   * (paged, `next`) is asked for the following pages, each within
   * `timeoutMs`, while its pages are full and for at most
   * QUERY_PAGING_TIMEOUTS times `timeoutMs` in all.
   */
  async queryKeys(prefix: string, timeoutMs: number): Promise<string[]> {
    checkTimeout("timeoutMs", timeoutMs);
    const db = this.db;
    const found = new Set(await db.records.query(prefix));
    closedCheck(db, "queryKeys");
    if (db.network.peerCount === 0) return [...found].sort();
    let chars = 0;
    const collect = (keys: string[]) => {
      for (const k of keys) {
        if (found.size >= MAX_QUERY_KEYS || chars + k.length > MAX_QUERY_CHARS) return;
        if (!k.startsWith(prefix) || found.has(k)) continue;
        found.add(k);
        chars += k.length;
      }
    };
    const id = randomId();
    const deadline = db.monotonic() + timeoutMs * QUERY_PAGING_TIMEOUTS; // monotonic: it bounds the pages' timeouts
    const paging: Promise<void>[] = [];
    // One paging loop a peer: a peer answers the query more than once when it forwarded it to other servers.
    const pagingPeers = new Set<string>();
    await new Promise<void>((resolve) => {
      db.requests.add(
        id,
        timeoutMs,
        (message, from) => {
          if (message.type !== "queryAck") return true;
          collect(message.keys);
          if (message.next !== undefined && from && !pagingPeers.has(from.clientId) && isFullPage(message.keys)) {
            pagingPeers.add(from.clientId);
            paging.push(this.nextPages(prefix, message.next, from, { timeoutMs, deadline }, collect, () => (chars >= MAX_QUERY_CHARS ? MAX_QUERY_KEYS : found.size)));
          }
          return true;
        },
        resolve,
      );
      // Every server answers a query (with no keys, if need be): one that leaves them unanswered is judged (server-watch.ts).
      if (db.network.sendToAll({ type: "query", id, key: prefix }) > 0) db.serverWatch.askedAll(db.network.serverPeers, "request", id);
    });
    await Promise.all(paging);
    closedCheck(db, "queryKeys"); // close() ended the waits: not "no more keys"
    return [...found].sort();
  }

  /** Asks one peer for the pages after `after` until it says there are no more (bounded in pages and keys). */
  private async nextPages(prefix: string, after: string, from: PeerSession, time: { timeoutMs: number; deadline: number }, collect: (keys: string[]) => void, size: () => number): Promise<void> {
    const db = this.db;
    for (let page = 0; page < MAX_QUERY_PAGES && size() < MAX_QUERY_KEYS && !from.connection.closed && !db.isClosed; page++) {
      const left = time.deadline - db.monotonic();
      if (left <= 0) return;
      const id = randomId();
      const reply = await new Promise<ToolDbMessage | undefined>((resolve) => {
        db.requests.add(id, Math.min(time.timeoutMs, left), (message) => resolve(message), () => resolve(undefined));
        if (from.send({ type: "query", id, key: prefix, after })) db.serverWatch.asked(from, "request", id);
      });
      if (reply?.type !== "queryAck") return;
      collect(reply.keys);
      // A page must move on (a peer that names the same place again is done), and be full.
      if (reply.next === undefined || reply.next <= after || !isFullPage(reply.keys)) return;
      after = reply.next;
    }
  }

  /** Runs a server function on the first peer that has it. */
  async doFunction(name: string, args: unknown, timeoutMs: number): Promise<FunctionReturn> {
    stringArgument("name", name);
    checkTimeout("timeoutMs", timeoutMs);
    const db = this.db;
    // As every other call on a closed node (its store rejects them): not "Not connected", which invites a retry.
    closedCheck(db, `doFunction ${name.slice(0, 64)}`);
    const peers = db.network.peerCount;
    if (peers === 0) return { code: "ERR", return: "Not connected" };
    const id = randomId();
    // Counted once a peer: one peer repeating NOT_FOUND must not end the wait for the others.
    const notFound = new Set<string | undefined>();
    return new Promise<FunctionReturn>((resolve, reject) => {
      db.requests.add(
        id,
        timeoutMs,
        (message, from) => {
          if (message.type !== "functionReturn") return true;
          if (message.code === "NOT_FOUND" && notFound.add(from?.clientId).size < peers) return true;
          resolve({ code: message.code, return: message.return });
        },
        // close() ends the wait too: that is CLOSED, not "Timed out", which invites a retry.
        () => (db.isClosed ? reject(closedError(`doFunction ${name.slice(0, 64)}`)) : resolve({ code: "ERR", return: "Timed out" })),
      );
      db.network.sendToAll({ type: "function", id, function: name, args });
    });
  }
}

function closedError(what: string): ToolDbError {
  return new ToolDbError(ErrorCode.CLOSED, `${what}: the node is closed`);
}

/** A call on a node that is closed, or was closed while it waited for replies, rejects with CLOSED. */
function closedCheck(db: NodeContext, what: string): void {
  if (db.isClosed) throw closedError(what);
}

/** Whether a page that says more keys follow is full, as an honest peer's is (see FULL_PAGE_KEYS). */
function isFullPage(keys: readonly string[]): boolean {
  if (keys.length >= FULL_PAGE_KEYS) return true;
  let bytes = 0;
  for (const k of keys) bytes += k.length + 3;
  return bytes >= FULL_PAGE_BYTES;
}
