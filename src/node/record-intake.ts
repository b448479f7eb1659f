/**
 * Records from anywhere into the store: verify (signature, proof of work,
 * custom verifiers, quotas), merge (last writer wins; CRDT documents merge),
 * and on a change notify listeners and relay; a sender that lost is answered
 * with the winner. `ToolDb.acceptRecord` is this; local writes use `merge`
 * and `changed` (local-writer.ts).
 */
import type { PeerSession } from "../network/peer-session.js";
import { splitHeads } from "./crdt-docs.js";
import { ErrorCode, errorText } from "../base/errors.js";
import type { NodeContext } from "./node-context.js";
import { type RecordMessage, recordMessage } from "./node-types.js";
import { randomId } from "../base/random.js";
import type { MergeOutcome, ReadAhead } from "./record-store.js";
import { type Admission, DuplicateGate } from "./duplicate-gate.js";
import { type ToolDbRecord, isFirstWriterKey } from "../records/record.js";
import { VerifyResult } from "../records/verify-result.js";
import { reportUsernameConflict } from "./username-conflicts.js";
import { boundHops } from "../records/hops.js";
import { frameWithRecord } from "../records/record-frame.js";
import { LruMap } from "../base/bounded-set.js";
import type { Verdict } from "../records/record-verifier.js";

/**
 * Refusals that are no strike against the sender, who may be honest:
 * - KeyNotBound: a tool-db 2.6.6 record (its hash does not cover its key)
 *   where legacyRecords is off. Struck, a 2.6.6 client (or a server migrated
 *   with 2.6.6 data) was banned after 10 writes, without being told why.
 * - IllFormedKey: a key with a lone surrogate. tool-db 2.6.6 servers and
 *   older tooldb-dht servers take and relay such records (a stranger wrote
 *   11 to one, and the honest relay was struck and banned here), and a 2.6.6
 *   app that cut an emoji in half writes them.
 * Either costs the shape checks at most (no signature check), as cheap as
 * any refused put; the size-weighted message rate bounds them.
 */
const NOT_STRUCK: ReadonlySet<string> = new Set([VerifyResult.KeyNotBound, VerifyResult.IllFormedKey]);

/** Keys per link whose winner was sent to a sender that was behind (see `answerBehind`). */
const ANSWERED_PER_LINK = 256;

export class RecordIntake {
  /** Drops copies already stored or on their way in before their signatures are checked. */
  readonly gate: DuplicateGate;
  /** Per link: key -> hash of the winner last sent to it. */
  private readonly answered = new WeakMap<PeerSession, LruMap<string, string>>();

  constructor(private readonly db: NodeContext) {
    this.gate = new DuplicateGate((key) => db.records.readAhead(key), db.verifier);
  }

  /**
   * Starts the duplicate check and verification of `record` (see
   * DuplicateGate); `accept` with the admission finishes it. Callers that
   * merge in a fixed order start many admissions first, so their signature
   * checks run in parallel. Undefined for a CRDT document with several
   * heads: `accept` splits it and admits each head on its own.
   */
  admit(record: unknown): Admission | undefined {
    return splitHeads(record) ? undefined : this.gate.admit(record);
  }

  /**
   * Verifies a record from anywhere, merges it (last writer wins), and on a
   * change notifies listeners and relays. Returns what the store holds for
   * the key afterwards, or undefined when the record was refused. A copy of
   * a record already stored or in flight is dropped before verification and
   * resolves to the same winner.
   */
  async accept(record: unknown, from?: PeerSession, to: string[] = [], messageId?: string, admission?: Admission, spread = true): Promise<ToolDbRecord | undefined> {
    const heads = admission ? undefined : splitHeads(record);
    if (heads) {
      // A CRDT document with several signed change lists: each is verified and merged on its own (spread as the document).
      let winner: ToolDbRecord | undefined;
      for (const head of heads) winner = (await this.accept(head, from, to, undefined, undefined, spread)) ?? winner;
      return winner;
    }
    const admitted = admission ?? this.gate.admit(record);
    let winner: ToolDbRecord | undefined;
    try {
      const checked = await admitted.checked;
      if (checked.duplicate) return (winner = checked.winner);
      try {
        return (winner = await this.acceptVerified(record, checked.verdict, from, to, messageId, checked.read, spread));
      } finally {
        checked.read?.release();
      }
    } finally {
      admitted.settle(winner);
    }
  }

  /** A record that failed verification: its sender is struck (see below), or the refusal is reported. */
  refuseUnverified(record: unknown, verdict: Verdict, from: PeerSession | undefined): void {
    const key = typeof (record as { k?: unknown })?.k === "string" ? ((record as { k: string }).k.slice(0, 128)) : undefined;
    const event = { code: ErrorCode.RECORD_REFUSED, reason: `${verdict.result}: ${verdict.reason ?? ""}`, key };
    if (from && !NOT_STRUCK.has(verdict.result)) this.db.network.strikePeer(from, event.code, event.reason, key);
    else this.db.refused({ ...event, peer: from?.clientId });
  }

  private async acceptVerified(record: unknown, verdict: Verdict, from: PeerSession | undefined, to: string[], messageId: string | undefined, read: ReadAhead | undefined, spread: boolean): Promise<ToolDbRecord | undefined> {
    const db = this.db;
    if (verdict.result !== VerifyResult.Verified) {
      this.refuseUnverified(record, verdict, from);
      return undefined;
    }
    const rec = record as ToolDbRecord;
    // The checks below mostly have nothing to do: asked synchronously first, they cost no promise a record.
    const custom = db.customVerifiers.applies(rec.k) ? await db.customVerifiers.refusal(rec, db.records) : undefined;
    if (custom) {
      // Counted against the link only for a record a sync run fetched or was pushed (a frame: no message id): a run
      // that saw one keeps its place in the peer's feed (change-sync.ts). A relayed put refused meanwhile is not the
      // run's and cost it a needless retry.
      if (from && messageId === undefined) db.customVerifiers.countRefusal(from);
      db.refused({ code: ErrorCode.CUSTOM_VERIFICATION_FAILED, reason: `${VerifyResult.CustomVerificationFailed}: ${custom}`, key: rec.k.slice(0, 128), peer: from?.clientId });
      return undefined;
    }
    const signUp = from && db.quota.checksSignUp(rec) ? await db.quota.signUpRefusal(rec, from) : null;
    if (signUp) {
      db.refused({ code: ErrorCode.SIGN_UP_LIMIT, reason: `sign-up refused: ${signUp}`, key: rec.k.slice(0, 128), peer: from?.clientId, host: from?.host });
      return undefined;
    }
    const overQuota = from && !db.quota.passes(rec) ? await db.quota.check(rec) : null;
    if (overQuota) {
      db.refused({ code: ErrorCode.QUOTA_EXCEEDED, reason: overQuota, key: rec.k.slice(0, 128), peer: from?.clientId });
      return undefined;
    }
    return this.merged(rec, await this.merge(rec, read), from, to, messageId, spread);
  }

  /**
   * What follows a verified record's merge: quotas, events, the relay, and
   * an answer to a sender that is behind. Resolves what the store holds for
   * the key, or undefined when the record was refused. `spread` false: a
   * changed record goes to subscribers only, not to other servers (`relay`).
   */
  merged(rec: ToolDbRecord, outcome: MergeOutcome, from: PeerSession | undefined, to: string[], messageId: string | undefined, spread = true): ToolDbRecord | undefined {
    const db = this.db;
    if (outcome.refused) {
      db.refused({ code: ErrorCode.RECORD_REFUSED, reason: outcome.refused, key: rec.k.slice(0, 128), peer: from?.clientId });
      return undefined;
    }
    db.quota.merged(rec, outcome, from);
    if (db.isClosed) return outcome.winner;
    reportUsernameConflict(db, rec, outcome);
    if (!outcome.changed && isFirstWriterKey(rec.k) && outcome.winner.h !== rec.h) {
      const key = rec.k.slice(0, 128);
      db.refused({ code: ErrorCode.RECORD_REFUSED, reason: `${VerifyResult.CantOverwrite}: an older sign-up holds ${key}`, key, peer: from?.clientId });
    }
    const id = messageId ?? randomId();
    if (outcome.changed) {
      if (from) {
        from.sentNewRecord = true;
        // An update of a key this node watches: delivered what it asked for (slot-rotation.ts keeps such links).
        if (db.localSubscriptions.has(rec.k) || db.keyListeners.has(rec.k)) {
          from.servedAt = db.now();
          // Delivered again later (a read of the key), it earns merit while this client sent it to no peer.
          if (!db.isServer) db.merit.delivered(outcome.winner.h);
        }
      }
      const message = recordMessage(rec, id, to);
      this.changed(message, from);
      this.relay(message, from, messageId !== undefined, outcome.json, spread);
    } else if (from && outcome.winner.h !== rec.h && rec.c === null) {
      this.answerBehind(from, outcome.winner);
    }
    // After `put` and `data`, as in tool-db 2.6.6; also for a record that passed every check but lost the merge.
    if (db.listenerCount("verified") > 0) db.emit("verified", recordMessage(rec, id, to));
    return outcome.winner;
  }

  /**
   * The sender is behind: answered with what wins here so both converge,
   * once per winner and link. Stale puts resent for a key with a large
   * value made a server send that value each time (an outside check: 570
   * times the bytes it received).
   */
  private answerBehind(from: PeerSession, winner: ToolDbRecord): void {
    let sent = this.answered.get(from);
    if (!sent) this.answered.set(from, (sent = new LruMap(ANSWERED_PER_LINK)));
    if (sent.get(winner.k) === winner.h) return;
    sent.set(winner.k, winner.h);
    if (!this.db.isServer) this.db.merit.handedOut(winner.h); // it may echo it back (merit-records.ts)
    from.send({ type: "put", id: randomId(), data: winner });
  }

  /** Plain records: last writer wins; CRDT records (`c` set): merged into the key's document. `read`: the key as read ahead. */
  merge(record: ToolDbRecord, read?: ReadAhead): Promise<MergeOutcome> {
    return record.c === null ? this.db.records.merge(record, read) : this.db.crdtDocs.merge(record);
  }

  /**
   * A record (in the message it came in, or this node's own put) changed the
   * store: events, and key listeners unless it is this node's own write (as
   * in tool-db 2.6.6, whose listeners hear other nodes' changes: an app that
   * shows its own write at once would otherwise show it twice).
   */
  changed(message: RecordMessage, from: PeerSession | undefined, ownWrite = false): void {
    const record = message.data;
    this.db.emit("put", message, from?.clientId);
    if (record.c !== null) this.db.emit("crdtput", message);
    this.db.emit("data", record);
    if (ownWrite) return;
    this.db.keyListeners.trigger(record, (err) => this.db.log("key listener threw: %s", errorText(err)));
  }

  /**
   * Servers pass changes on to other servers and to subscribed peers: on the
   * broadcast tree to the servers it carries (pushed whole, or only announced
   * for records that came by anti-entropy, without a message id), as before
   * to every other server. `to` (the hops a message went through) only keeps
   * servers from passing it straight back: a peer cannot list a subscriber
   * there to hide an update from it. A subscriber gets each record once, as
   * a record changes this store once; the peer it came from already has it.
   *
   * Records a store copy brought (`spread` false) go to no server that
   * reconciles with us (a proven rbsr1 server, dialed by either side): a new
   * server copies a mesh member's store, which its other servers mostly
   * hold. Announced on the tree, each of them asked for those it no longer
   * remembered receiving (GRAFT), and a new server linked to two sent the
   * second most of what it copied from the first (2,526 of 3,000 records);
   * one that dialed the new server, its lookups bounded, still asked for
   * 1,095 of 3,000 it held. Once the copy ends we reconcile with each of
   * them again (ServerSync; once with those that dialed us), pushing what
   * it lacks, so a server linked while the copy ran gets the rest (test
   * broadcast-tree-held-review). 2.6.6 and older servers are relayed to as
   * before.
   */
  private relay(message: RecordMessage, from: PeerSession | undefined, viaPut: boolean, json: string | undefined, spread: boolean): void {
    if (!this.db.options.server || !from) return;
    const { network, broadcast: tree } = this.db;
    const subscribers = this.db.remoteSubscriptions.subscribers(message.data.k);
    // The sender usually listed itself already: listed once, `to` grows by one hop per relay (the window is LIMITS.maxHops relays deep).
    const relayed = { type: message.type, id: message.id, data: message.data, to: boundHops(message.to, from.clientId) };
    // A store copy's records skip only the servers that reconcile with us again once it ends (ServerSync.reconciles).
    const skip = spread ? undefined : (s: PeerSession) => this.db.sync.reconciles(s);
    network.sendToServers(relayed, (s) => !tree.carries(s) && !subscribers?.has(s.clientId) && !skip?.(s));
    tree.relay(message.data, message.id, from, !viaPut, false, json, skip);
    if (!subscribers) return;
    const to = boundHops(relayed.to, network.getClientAddress());
    const frame = json === undefined ? JSON.stringify({ ...relayed, to }) : frameWithRecord({ type: relayed.type, id: relayed.id, to }, json);
    let sent = 0;
    for (const clientId of subscribers) {
      if (clientId !== from.clientId && network.session(clientId)?.sendRaw(frame, message.type)) sent++;
    }
    if (sent > 0) network.traffic.out(message.type, sent);
  }
}
