import { ErrorCode, errorText, isToolDbError } from "../base/errors.js";
import { LIMITS, QUERY_PAGES_CAPABILITY, type CrdtGetMessage, type CrdtPutMessage, type FunctionMessage, type GetMessage, type PutMessage, type QueryMessage, type SubscribeMessage, type ToolDbMessage } from "../records/messages.js";
import type { PeerSession } from "../network/peer-session.js";
import type { NodeContext } from "./node-context.js";
import type { ToolDbRecord } from "../records/record.js";
import { awaitNewest } from "./get-replies.js";
import { UnsolicitedBudget } from "./unsolicited-budget.js";
import { VerifyResult } from "../records/verify-result.js";
import { ownerOf, type RequestOwner } from "./request-shares.js";

/** How long a server waits for other servers to answer a forwarded get or query. */
const FORWARD_TIMEOUT_MS = 3000;

/**
 * Incoming ToolDb messages, after the handshake. Replies to requests this
 * node sent (by message id) go to `db.requests`; requests it forwarded for a
 * peer are answered back to that peer once verified.
 */
export class Protocol {
  /**
   * Puts from one link are merged in arrival order while their signatures
   * are checked in parallel; otherwise a fast verify of update n+1 could
   * land before update n and hide it from subscribers.
   */
  private readonly mergeOrder = new WeakMap<PeerSession, Promise<unknown>>();
  /** When a peer's request was last refused for its share of the pending requests (see `overShare`). */
  private readonly overShareAt = new WeakMap<PeerSession, number>();
  /** What a client takes unasked (see `asked`). */
  private readonly unsolicited: UnsolicitedBudget;

  constructor(private readonly db: NodeContext) {
    this.unsolicited = new UnsolicitedBudget(() => db.now());
  }

  /** Returns the handling of the message while it is outstanding (the network's per-peer limits count it). */
  handle(message: ToolDbMessage, from: PeerSession): Promise<void> | void {
    // Tree control frames are never relayed: they stay out of the dedup set.
    if (message.type === "ihave" || message.type === "graft" || message.type === "prune") return this.db.broadcast.handle(message, from);
    // Replies to a request of ours are never relayed either, and every peer asked answers under the
    // request's id (a server that forwarded a query answers again with what it got back): deduplicated
    // by id, all but the first answer were lost. The request they answer bounds what they can do.
    if (message.type === "queryAck" || message.type === "functionReturn") {
      this.db.serverWatch.answered(from, "request", message.id);
      this.db.emit("message", message, from.clientId);
      if (this.db.requests.resolve(message.id, message, from)) from.answeredAt = this.db.now();
      return;
    }
    // A tool-db peer may reuse ids across types; dedup per type. Replies to a get of
    // ours come from every peer asked with the same id: those are dedup'd per peer.
    const isPut = message.type === "put" || message.type === "crdtPut";
    if (isPut) this.db.reasks.received(from, message.data); // duplicates too: a 2.6.6 peer sent that record
    const awaited = isPut && this.db.requests.has(message.id);
    // A put is the same message only with the same record: a 2.6.6 server pushes every update of a
    // subscription under the subscribe's id, and all but the first were dropped here.
    const h = isPut ? (message.data as { h?: unknown }).h : undefined;
    const record = typeof h === "string" ? `:${h.slice(0, 128)}` : "";
    // A client's own query or acknowledged put is answered even when a server that got it too passed
    // it on first: the client judges each server by its answers (server-watch.ts), and an honest server
    // that dropped the client's copy as a duplicate was dropped as unresponsive (found in review).
    const ownRequest = !from.isServer && (message.type === "query" || (isPut && (message as { ack?: unknown }).ack === true));
    if (!this.db.processed.add(awaited || ownRequest ? `${message.type}:${message.id}:${from.clientId}${record}` : `${message.type}:${message.id}${record}`)) {
      if (message.type === "put" || message.type === "crdtPut") this.db.broadcast.duplicateId(message, from);
      return;
    }
    this.db.emit("message", message, from.clientId);
    switch (message.type) {
      case "put":
      case "crdtPut":
        return this.onPut(message, from).then(
          (delivered) => {
            // A reply to a request of ours that was refused is still an answer: the request is told (server-sync.ts counts it).
            if (awaited && !delivered) this.db.requests.refused(message.id, message, from);
          },
          (err: unknown) => {
            this.fail(from, err);
            if (awaited) this.db.requests.refused(message.id, message, from);
          },
        );
      case "get":
      case "crdtGet":
        return this.onGet(message, from).catch((err) => this.fail(from, err));
      case "subscribe":
        return this.onSubscribe(message, from).catch((err) => this.fail(from, err));
      case "query":
        return this.onQuery(message, from).catch((err) => this.fail(from, err));
      case "function":
        return this.onFunction(message, from).catch((err) => this.fail(from, err));
      case "putAck":
        this.db.acks.onPutAck(message, from);
        return;
      case "syncRange":
      case "syncRangeAck":
      case "syncFetch":
      case "syncCopy":
      case "syncRecords":
      case "syncPush":
      case "syncPushAck":
      case "syncChanges":
      case "syncChangesAck":
      case "syncOffer":
      case "syncOfferAck":
      case "syncCommit":
      case "syncCommitAck":
        return this.db.sync.handle(message, from);
      default:
        return;
    }
  }

  private fail(from: PeerSession, err: unknown): void {
    if (this.db.isClosed) return;
    if (isToolDbError(err, ErrorCode.STORAGE_FAILED)) {
      // This server's own storage failed (disk full, I/O error): refused, and the sender is not to blame.
      this.db.refused({ code: ErrorCode.STORAGE_FAILED, reason: err.message, peer: from.clientId });
      return;
    }
    this.db.refused({ code: ErrorCode.BAD_MESSAGE, reason: `could not handle message: ${errorText(err)}`, peer: from.clientId });
  }

  /** Resolves true when the put was delivered as the reply to a request waiting under its id. */
  private async onPut(message: PutMessage | CrdtPutMessage, from: PeerSession): Promise<boolean> {
    // A client first decides whether it takes the record at all (`asked`), in the peer's merge order.
    // Known at once for nearly every put (a server, a reply, a subscribed key): its checks then start now,
    // in parallel; deferred into the merge order, a subscriber verified one put at a time (relay 0.26 -> 0.17).
    const wanted = this.db.isServer || this.askedNow(message) ? undefined : this.asked(message, from);
    this.db.broadcast.arrived(message, from);
    // Duplicate check and verification start now, in parallel with other puts; the merge waits its turn.
    const admission = wanted ? undefined : this.db.admitRecord(message.data);
    const previous = this.mergeOrder.get(from);
    const key = (message.data as { k?: unknown } | null)?.k;
    // An answer to a get this node waits for (the app's read, or its asking again for records it let go) is never let go.
    const awaited = typeof key === "string" && this.awaitedReply(message.id, key, from);
    let letGo = false;
    const accept = async () => {
      if (wanted && !(await wanted)) return undefined;
      // This client lets go of the peer's records (network/client-shedding.ts): one waiting for its merge goes too.
      if (!from.letGo || typeof key !== "string" || awaited) return this.db.acceptRecord(message.data, from, message.to, message.id, admission);
      from.letGo(key);
      admission?.abandon();
      letGo = true;
      return undefined;
    };
    const accepted = previous ? previous.then(accept) : accept();
    const tail = accepted.catch(() => undefined);
    this.mergeOrder.set(from, tail);
    void tail.then(() => {
      if (this.mergeOrder.get(from) === tail) this.mergeOrder.delete(from);
    });
    const winner = await accepted.catch((err: unknown) => {
      if (message.ack === true && isToolDbError(err, ErrorCode.STORAGE_FAILED)) void this.db.acks.storageFailed(message as unknown as PutMessage, from, err).catch((e) => this.fail(from, e));
      throw err;
    });
    if (letGo || (wanted && !(await wanted))) return false;
    if (!winner) this.db.broadcast.refused(message.data);
    // A crdtPut is confirmed like a put (same fields).
    if (message.ack === true) {
      // The refusal reason of a refused put (a CRDT document with heads has no single admission).
      const verdict = admission ? admission.checked.then((c) => c.verdict) : winner ? Promise.resolve({ result: VerifyResult.Verified }) : this.db.verifier.verify(message.data);
      void this.db.acks.confirm(message as unknown as PutMessage, from, verdict, winner).catch((err) => this.fail(from, err));
    }
    if (!winner) return false;
    // A reply to our own get, or to one we forwarded for a peer (get-replies.ts checks its key).
    const asked = this.db.requests.keyOf(message.id);
    const held = this.db.requests.heldOf(message.id);
    if (!this.db.requests.resolve(message.id, { ...message, data: winner }, from)) return false;
    this.db.serverWatch.answered(from, "request");
    // It delivered what we asked for: the key asked, and a record that wins here (not a stale copy) and that this node
    // did not hold when it asked, or held but never sent to any peer since a peer delivered it new (merit-records.ts):
    // any peer can echo a record this node gave out (the client's own writes, what it answers a get with).
    if (asked !== winner.k || winner.h !== (message.data as { h?: unknown }).h) return true;
    const client = !this.db.isServer;
    if (winner.h !== held || (client && this.db.merit.proves(winner.h))) {
      from.servedAt = this.db.now();
      if (client) this.db.merit.delivered(winner.h);
    }
    return true;
  }

  /**
   * Whether a record of `key` under `id` answers a get this client waits
   * for: one of its pending gets for that key, or its asking `from` again
   * for a key of records it let go (the first answer only: it is used up
   * here, as the frame leaves the intake).
   */
  private awaitedReply(id: string, key: string, from: PeerSession): boolean {
    if (this.db.isServer) return false;
    if (from.askedAgain(id, key)) {
      from.answeredAgain(id);
      return true;
    }
    return this.db.requests.keyOf(id) === key;
  }

  /**
   * Whether a client takes a record a peer put that `askedNow` did not
   * take: a key it holds (a newer version of its own write), or another
   * record within what it takes unasked (unsolicited-budget.ts: a server's
   * own writes, a WebRTC mesh's puts). Anything else is refused before its
   * signature check, with no strike.
   */
  private async asked(message: PutMessage | CrdtPutMessage, from: PeerSession): Promise<boolean> {
    const key = (message.data as { k: string }).k;
    if ((await this.db.records.get(key).catch(() => undefined)) !== undefined) return true;
    if (this.unsolicited.take(from, JSON.stringify(message.data).length)) return true;
    this.db.refused({ code: ErrorCode.RECORD_REFUSED, reason: "not asked for, and over what a client takes unasked (1,000 keys or 16 MiB a link; 10,000 keys or 128 MiB per 10 min in all)", key: key.slice(0, 128), peer: from.clientId });
    return false;
  }

  /** `asked` without reading the store: a reply to a request, a key subscribed to or listened to, or a record the cheap checks refuse (junk goes the usual way, refused and struck, and costs no budget). */
  private askedNow(message: PutMessage | CrdtPutMessage): boolean {
    const key = (message.data as { k?: unknown } | null)?.k;
    // Only a get's reply for the key asked is asked for: a put under another request's id (a query, a function
    // call, whose ids the server knows) or for another key went past the budget unchecked (found in review).
    const replyTo = this.db.requests.keyOf(message.id);
    if ((replyTo !== undefined && replyTo === key) || typeof key !== "string" || this.db.localSubscriptions.has(key) || this.db.keyListeners.has(key)) return true;
    return this.db.verifier.prepare(message.data).result !== VerifyResult.Verified;
  }

  /** A crdtGet is answered with a crdtPut (tool-db 2.6.6 waits for that type), a get with a put. */
  private async onGet(message: GetMessage | CrdtGetMessage, from: PeerSession): Promise<void> {
    const type = message.type === "crdtGet" ? "crdtPut" : "put";
    const gone = () => from.connection.closed; // dropped meanwhile (e.g. by the send budget): nothing is parsed
    const stored = await this.db.records.getChecked(message.key, () => !gone());
    if (gone()) return;
    if (stored !== undefined) {
      // The checked JSON goes out as it was stored: a large record is not serialised again for every asker.
      this.handedOut(stored.h); // whether or not the send goes through: fail closed
      from.sendWithRecord({ type, id: message.id }, stored.json);
      return;
    }
    if (!this.db.isServer || message.to.length >= LIMITS.maxHops - 1 || this.db.requests.has(message.id)) return;
    const answer = (record: ToolDbRecord | undefined) => {
      if (record && !from.connection.closed) from.send({ type, id: message.id, data: record });
    };
    const owner = ownerOf(from);
    const wait = awaitNewest(this.db, message.id, message.key, FORWARD_TIMEOUT_MS, answer, owner);
    if (wait) wait.asked(this.forwardTo(message, from));
    else this.overShare(from, message.key, owner);
  }

  private async onSubscribe(message: SubscribeMessage, from: PeerSession): Promise<void> {
    const added = this.db.remoteSubscriptions.add(from.clientId, message.key, (peer, key) =>
      this.db.refused({ code: ErrorCode.SUBSCRIPTION_LIMIT, reason: `subscription dropped to make room: the server holds its maximum and this peer held the most`, key: key.slice(0, 128), peer }),
    );
    if (added !== "ok") {
      const subs = this.db.remoteSubscriptions;
      const key = message.key.slice(0, 128);
      // Refused, never struck: a client cannot know this server's cap, and banning it for watching
      // many keys (as before) cut it off entirely. A flood of subscribes is the message rate's to stop.
      const reason = added === "peer-cap" ? `too many subscriptions from this peer (${subs.maxPerPeer})` : `server holds its maximum of ${subs.maxTotal} subscriptions`;
      this.db.refused({ code: ErrorCode.SUBSCRIPTION_LIMIT, reason, key, peer: from.clientId });
      return;
    }
    const local = await this.db.records.get(message.key);
    if (!local) return;
    this.handedOut(local.h);
    from.send({ type: "put", id: message.id, data: local });
  }

  /** A client sent a record it holds to a peer: that peer may echo it, and earns no merit by it (merit-records.ts). */
  private handedOut(h: string): void {
    if (!this.db.isServer) this.db.merit.handedOut(h);
  }

  /**
   * One page of keys, as many as fit a frame (limits/frame-fit.ts); a peer
   * that pages (qpage1) is told where to go on. Only the first page is
   * forwarded to other servers, and what they answer is passed on as one
   * page each: a peer pages through each server it is linked to itself.
   */
  private async onQuery(message: QueryMessage, from: PeerSession): Promise<void> {
    const paged = from.caps.has(QUERY_PAGES_CAPABILITY);
    const { records, frames } = this.db;
    const keys = paged && message.after !== undefined ? await records.queryAfter(message.key, message.after, LIMITS.maxQueryKeys) : await records.query(message.key, LIMITS.maxQueryKeys);
    const fit = frames.keysThatFit(keys);
    const more = fit > 0 && (fit < keys.length || keys.length >= LIMITS.maxQueryKeys);
    from.send({ type: "queryAck", id: message.id, keys: fit < keys.length ? keys.slice(0, fit) : keys, ...(paged && more ? { next: keys[fit - 1] } : {}) });
    if (!this.db.isServer || message.after !== undefined || message.to.length >= LIMITS.maxHops - 1) return;
    this.forward(message, from, (reply) => {
      if (reply.type === "queryAck") from.send({ type: "queryAck", id: message.id, keys: reply.keys.slice(0, frames.keysThatFit(reply.keys)) });
      return true;
    });
  }

  /** Sends a request on to the other servers; replies with its id come back through `onReply`. */
  private forward(message: QueryMessage, from: PeerSession, onReply: (reply: ToolDbMessage) => boolean | void): void {
    if (this.db.requests.has(message.id)) return;
    const owner = ownerOf(from);
    if (!this.db.requests.add(message.id, FORWARD_TIMEOUT_MS, onReply, () => undefined, { owner })) return this.overShare(from, message.key, owner);
    if (this.forwardTo(message, from) === 0) this.db.requests.remove(message.id);
  }

  /**
   * A request not forwarded: its peer (or its address site) holds its share
   * of the pending requests (request-shares.ts). Answered with what this
   * server holds only; refused once a second per peer at most (a flood is not logged request by request).
   */
  private overShare(from: PeerSession, key: string, owner: RequestOwner): void {
    const now = this.db.now();
    if (now - (this.overShareAt.get(from) ?? -Infinity) < 1000) return;
    this.overShareAt.set(from, now);
    const limit = this.db.requests.shares.limits(owner);
    const site = owner.site === undefined ? "" : ` (or its address site ${limit.site})`;
    this.db.refused({ code: ErrorCode.RATE_LIMITED, reason: `request not forwarded to other servers: this peer holds ${limit.peer} forwarded requests${site} waiting for answers`, key: key.slice(0, 128), peer: from.clientId });
  }

  /**
   * Passes a request on to the servers that proved who they are (a peer that
   * only says it is a server gets no forwarded requests to answer); returns
   * how many it went to.
   */
  private forwardTo(message: GetMessage | CrdtGetMessage | QueryMessage, from: PeerSession): number {
    return this.db.network.sendToServers({ ...message, to: [...message.to, from.clientId] }, (s) => s.provenServer && s !== from);
  }

  private async onFunction(message: FunctionMessage, from: PeerSession): Promise<void> {
    const fn = this.db.functions.get(message.function);
    if (!fn) {
      from.send({ type: "functionReturn", id: message.id, code: "NOT_FOUND", return: "Function not found" });
      return;
    }
    if (!this.db.functions.admit(message.function, from)) {
      // Answered each time; reported (a `refused` event, RATE_LIMITED) at most once a second per link, with a count.
      from.send({ type: "functionReturn", id: message.id, code: "ERR", return: this.db.functions.overRate(message.function, from) });
      return;
    }
    try {
      const result = await fn(message.args);
      if (!from.send({ type: "functionReturn", id: message.id, code: "OK", return: result ?? null })) {
        from.send({ type: "functionReturn", id: message.id, code: "ERR", return: `the result of ${message.function.slice(0, 64)} is larger than a frame` });
      }
    } catch (err) {
      // tool-db 2.6.6 sends `String(error)`: "Error: Invalid arguments", which apps match.
      from.send({ type: "functionReturn", id: message.id, code: "ERR", return: errorString(err) });
    }
  }
}

/** `String(err)` as tool-db 2.6.6 sends it, or a plain "Error" for a thrown value that cannot be turned into text (`{ toString: 1 }`). */
function errorString(err: unknown): string {
  try {
    return String(err);
  } catch {
    return "Error";
  }
}
