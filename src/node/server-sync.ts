import type { PeerSession } from "../network/peer-session.js";
import { RBSR_CAPABILITY, RangeSync } from "./sync/range-sync.js";
import { SYNC_INDEX_HINTS, SyncIndex } from "./sync/sync-index.js";
import { CHANGES_CAPABILITY } from "./sync/change-sync.js";
import { COPY_CAPABILITY } from "./sync/store-copy.js";
import { syncIndexName } from "./options.js";
import { putKey, type SyncMessage, type ToolDbMessage } from "../records/messages.js";
import { TimerGroup } from "../base/clock.js";
import { ErrorCode, errorText } from "../base/errors.js";
import { randomId } from "../base/random.js";
import { DEFAULT_REFRESH_MS, RunSchedule } from "./sync/run-schedule.js";
import type { NodeContext } from "./node-context.js";
import { ownerOf } from "./request-shares.js";
import { retriesAgain } from "../records/custom-verifiers.js";

/** Gets in flight per link during a catch-up. */
const IN_FLIGHT = 64;
const REQUEST_TIMEOUT_MS = 5000;
/**
 * Gets of a legacy catch-up that may go unheard in a row (no reply frame at
 * all from the peer under the get's id before it timed out or a full table
 * of pending requests gave it up; or never sent, the peer's share of that
 * table full for SHARE_WAIT_MS) before the catch-up with that peer stops.
 * A reply the record checks refuse is an answer all the same: a 2.6.6
 * record where legacyRecords is off, a custom verifier's or a quota's
 * refusal, a key this store cannot hold (64 such keys in a row stopped an
 * honest catch-up before its valid keys).
 */
const MAX_MISSES = IN_FLIGHT;
/**
 * Gets sent to a peer in one legacy catch-up: at most this many for each
 * get it answered with a record of the key asked, plus MAX_MISSES. A reply
 * under the id with another key costs the peer nothing (one stored record
 * reused for every id), so it only shows the peer is there: an outside
 * check's fake legacy servers listed 10,000 keys each, answered no get and
 * were sent 700,000 gets in 15 s; answering 1 get in 63 kept each catch-up
 * running to its end.
 */
const GETS_PER_ANSWER = 2;
/**
 * A get the table of pending requests refuses because the peer (or its
 * address site) holds its share waits for room, asking again after this
 * (ms), doubling, ... (counted as unanswered at once, the 64 misses were
 * used up in microseconds) ...
 */
const SHARE_RETRY_MS = 25;
/** ... up to this between tries, ... */
const SHARE_RETRY_MAX_MS = 1000;
/** ... and this long in all: a share held full that long (forwarded requests wait 3 s) counts as a get unanswered, never sent. */
const SHARE_WAIT_MS = 3 * REQUEST_TIMEOUT_MS;
/**
 * Replies of a legacy catch-up a custom verifier refused, held to be checked
 * again once its gets are done (`fetch`); past them, only their keys (already
 * held, in the peer's key list), asked for again.
 */
const REFUSED_HELD = IN_FLIGHT;

/**
 * How one catch-up get went: no reply frame from the peer under its id, a
 * reply for another key, a reply for the key asked (stored, or refused), or
 * never sent: the peer's share of the pending requests stayed full (`busy`),
 * or the link closed before it went out or the send failed (`unsent`).
 */
type GetOutcome = "unheard" | "other" | "key" | "refused" | "busy" | "unsent";

/**
 * When two servers link, each catches up on the other's records, so a
 * server that was down (or is new) converges with the mesh instead of only
 * seeing writes made after it joined. Between tooldb-dht servers that both
 * list the `rbsr1` capability the dialing side runs range-based
 * reconciliation (src/node/sync/range-sync.ts: no key cap, only differences
 * travel). With anyone else (tool-db 2.6.6) it uses ToolDb's own messages
 * (a `query` for all keys, then a `get` per key, at most `maxKeys`). Every
 * record that comes back is verified and merged like any other put; a
 * record that changes the store is relayed as usual.
 */
/** Catch-up progress since start, all links (for metrics and status). */
export interface SyncProgress {
  /** Catch-ups running now (not those waiting). */
  running: number;
  /** Reconciliation runs waiting for another link's run with the same peer to end (PeerRuns: one a peer address at a time). */
  waiting: number;
  /** Catch-ups finished. */
  completed: number;
  /**
   * Keys listed by peers, fetched so far (their gets went out), and of those the ones
   * that changed this store. Each listed key is counted once: a key asked for again in a
   * re-check (its reply refused by a custom verifier) is not fetched twice,
   * so keysFetched never exceeds keysListed.
   */
  keysListed: number;
  keysFetched: number;
  keysChanged: number;
  /** Reconciliation runs between tooldb-dht servers that ended, by how they went. */
  runs: { changes: number; range: number; copy: number; incomplete: number };
  /** Records those runs sent to peers and fetched from them. */
  recordsPushed: number;
  recordsFetched: number;
}

export class ServerSync {
  readonly progress: SyncProgress = {
    running: 0,
    waiting: 0,
    completed: 0,
    keysListed: 0,
    keysFetched: 0,
    keysChanged: 0,
    runs: { changes: 0, range: 0, copy: 0, incomplete: 0 },
    recordsPushed: 0,
    recordsFetched: 0,
  };

  private readonly maxKeys: number;
  /** Present on servers that keep the reconciliation index. */
  readonly range: RangeSync | undefined;
  private readonly schedule: RunSchedule | undefined;
  private readonly timers: TimerGroup;
  /** Catch-up gets waiting for room in the table of pending requests (woken by `close`). */
  private readonly pausing = new Set<() => void>();
  private closed = false;

  constructor(private readonly db: NodeContext) {
    const { options } = db;
    this.maxKeys = options.maxSyncKeys;
    this.timers = new TimerGroup(options.clock);
    if (options.server && options.serverSync) {
      const index = new SyncIndex(new options.storageAdapter(db, syncIndexName(options.storageName), SYNC_INDEX_HINTS), db.store, db.log, options.clock);
      db.records.indexer = index;
      this.range = new RangeSync(db, index, options.rangeSync);
      this.range.on("done", (run) => {
        const p = this.progress;
        p.completed++;
        if (run.complete) p.runs[run.mode]++;
        else p.runs.incomplete++;
        p.recordsPushed += run.pushed;
        p.recordsFetched += run.fetched;
        // A store copy's records are relayed to none of these (RecordIntake.relay): we reconcile with each again, once
        // with those that dialed us (they refresh on their own schedule), pushing what they lack.
        if (run.copied) for (const s of db.network.serverPeers) if (s.clientId !== run.peer && this.reconciles(s)) this.schedule?.request(s, !s.outgoing);
      });
      const range = this.range;
      const runOnce = async (session: PeerSession) => {
        // Counted down when the run returns, not on "done": no "done" fires after close, and a
        // node closed mid-run showed a catch-up running for ever.
        // A run waiting for another link's with the same peer is counted as waiting, not running.
        const waiting = (on: boolean) => {
          this.progress.running += on ? -1 : 1;
          this.progress.waiting += on ? 1 : -1;
        };
        this.progress.running++;
        try {
          return (await range.run(session, waiting))?.complete ?? true; // undefined: one was already running on this link
        } finally {
          this.progress.running--;
        }
      };
      this.schedule = new RunSchedule(runOnce, this.timers, () => db.isClosed, options.random, options.rangeSync?.refreshMs ?? DEFAULT_REFRESH_MS);
    }
  }

  /** Opens (or rebuilds) the index; resolves at once where none is kept. */
  open(): Promise<void> {
    return this.range ? this.range.index.open() : Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.pausing]) wake();
    this.timers.clearAll();
    this.range?.close();
    return this.range ? this.range.index.close() : Promise.resolve();
  }

  capabilities(): string[] {
    return this.range ? [RBSR_CAPABILITY, CHANGES_CAPABILITY, COPY_CAPABILITY] : [];
  }

  /** Reconciliation messages; ignored (and counted against the peer) where no index is kept. */
  handle(message: SyncMessage, from: PeerSession): Promise<void> | undefined {
    if (this.range) return this.range.handle(message, from);
    this.db.network.strikePeer(from, ErrorCode.BAD_MESSAGE, `${message.type} without the ${RBSR_CAPABILITY} capability`);
    return undefined;
  }

  /**
   * Catches up with the server behind `session`, at once: when the link
   * opens, and again when it comes back from a silence without closing
   * (`sessionRevived`: what was relayed meanwhile may be lost). Between
   * tooldb-dht servers the dialing side reconciles (see RunSchedule), and
   * again every `rangeSync.refreshMs` while the link stays open.
   */
  start(session: PeerSession): void {
    // Only a server that proved its identity on this link: a run keeps checkpoints in its name, and an
    // unproven link may be anyone replaying its record (as a 2.6.6 pong) and claiming its capabilities.
    if (this.schedule && session.caps.has(RBSR_CAPABILITY) && session.provenServer) {
      if (session.outgoing) this.schedule.request(session);
      return;
    }
    this.legacy(session);
  }

  /**
   * Whether this server can reconcile with `session` (a proven rbsr1 server,
   * dialed by either side): a store copy's records are not relayed to such a
   * link, with which we reconcile again once the copy ends (review of
   * 176a2eb: a server linked while a copy ran compared only the part copied
   * by then). Announced on the tree to a server that dialed the new one, the
   * copy came back: its lookups bounded, it asked for records it held (1,095
   * of 3,000 copied).
   */
  reconciles(session: PeerSession): boolean {
    return this.schedule !== undefined && session.provenServer && session.caps.has(RBSR_CAPABILITY);
  }

  private legacy(session: PeerSession): void {
    const id = randomId();
    this.db.requests.add(
      id,
      REQUEST_TIMEOUT_MS,
      (reply: ToolDbMessage) => {
        // The first answer is the peer's own key list; forwarded ones from further servers are not needed.
        if (reply.type !== "queryAck") return true;
        void this.fetch(session, reply.keys.slice(0, this.maxKeys));
        return false;
      },
      () => this.db.log("sync: %s did not list its keys", session.clientId),
    );
    // Run again on a link (revived), a 2.6.6 peer would leave the gets of records it sent unanswered: pinged first.
    this.db.reasks.ask(session, undefined, () => void session.send({ type: "query", id, key: "" }));
  }

  /**
   * Gets `keys` from the peer. Replies a custom verifier refused are checked
   * again once the gets are done, while fewer are refused each time
   * (`retriesAgain`): one whose verdict depends
   * on order (a post needs its user stored) refused a record listed before
   * its dependency, and this catch-up keeps no checkpoint and runs once a
   * link (a sync run keeps its place in the peer's feed instead,
   * change-sync.ts). The copies held (REFUSED_HELD) are checked; the keys of
   * those refused past them are asked for again (they were lost for good): a
   * 2.6.6 peer sends a record once per link (its processedOutHashes), so
   * legacy-reasks.ts pings it first.
   */
  private async fetch(session: PeerSession, keys: string[]): Promise<void> {
    const progress = this.progress;
    progress.running++;
    progress.keysListed += keys.length;
    let changed = 0;
    try {
      const pass = await this.pass(session, keys);
      changed = pass.changed;
      if (pass.stopped !== undefined) this.db.log("sync with %s stopped after %d of %d keys: %s", session.clientId, pass.reached, keys.length, pass.stopped);
      let { refused: held, refusedKeys } = pass;
      let before: number | undefined;
      for (let retries = 0; retriesAgain(retries, held.length + refusedKeys.length, before) && !session.connection.closed && !this.db.isClosed; retries++) {
        this.db.log("sync with %s: %d records refused by a custom verifier, checked again", session.clientId, held.length + refusedKeys.length);
        const again: unknown[] = [];
        for (const record of held) if ((await this.db.acceptRecord(record, session).catch((err: unknown) => void this.db.log("sync with %s: %s", session.clientId, errorText(err)))) === undefined) again.push(record);
        changed += held.length - again.length;
        progress.keysChanged += held.length - again.length;
        before = held.length + refusedKeys.length;
        const asked = refusedKeys.length > 0 ? await this.pass(session, refusedKeys, true) : { changed: 0, refused: [], refusedKeys: [] };
        changed += asked.changed;
        held = [...again, ...asked.refused];
        refusedKeys = asked.refusedKeys;
      }
    } finally {
      progress.running--;
      progress.completed++;
    }
    this.db.log("sync with %s: %d keys listed, %d changed here", session.clientId, keys.length, changed);
  }

  /**
   * The gets of `keys`: how many changed the store, and the replies refused
   * where a custom verifier applies, in the order they came (`again`: keys
   * asked for again, not counted in keysFetched a second time) (at most
   * REFUSED_HELD, as many as the replies of the gets in flight; past them,
   * their keys: a subset of `keys`, so bounded as the key list is).
   */
  private async pass(session: PeerSession, keys: string[], again = false): Promise<{ changed: number; refused: unknown[]; refusedKeys: string[]; reached: number; stopped?: string }> {
    let next = 0;
    let changed = 0;
    const refused: unknown[] = [];
    const refusedKeys: string[] = [];
    const hold = (record: unknown, key: string) => {
      if (!this.db.customVerifiers.applies(key)) return;
      if (refused.length < REFUSED_HELD) refused.push(record);
      else refusedKeys.push(key);
    };
    /** Gets in a row that no reply frame came back for. */
    let misses = 0;
    /** Gets sent (or about to be), of those still open, and of those answered with a record of the key asked. */
    let sent = 0;
    let open = 0;
    let answered = 0;
    let stopped: string | undefined;
    /** Workers waiting at the cap for an open get to end. */
    let waiting: (() => void)[] = [];
    const ended = () => {
      const wake = waiting;
      waiting = [];
      for (const w of wake) w();
    };
    const progress = this.progress;
    const worker = async () => {
      while (next < keys.length && stopped === undefined && !session.connection.closed && !this.db.isClosed) {
        if (sent >= answered * GETS_PER_ANSWER + MAX_MISSES) {
          // At the cap: the gets still open may raise it; with none open, the peer has not earned more.
          if (open === 0) {
            stopped = `${sent} gets sent, ${answered} answered with the key asked`;
            break;
          }
          await new Promise<void>((resolve) => waiting.push(resolve));
          continue;
        }
        const key = keys[next++]!;
        sent++;
        open++;
        try {
          const before = (await this.db.records.get(key).catch(() => undefined))?.h;
          const outcome = await this.get(session, key, hold);
          if (outcome === "key" || outcome === "refused") answered++;
          const out = outcome !== "busy" && outcome !== "unsent";
          if (!out) sent--;
          if (outcome === "key" || outcome === "refused" || outcome === "other") misses = 0;
          else if (outcome !== "unsent" && ++misses >= MAX_MISSES) stopped ??= `${MAX_MISSES} gets in a row went unanswered (or found no room in the table of pending requests)`;
          const after = (await this.db.records.get(key).catch(() => undefined))?.h;
          // Gets that went out only (2.6.6 interop: one waiting for its ping when the link closed was counted); a key asked for again was counted by the first pass.
          if (out && !again) progress.keysFetched++;
          if (after !== before) {
            changed++;
            progress.keysChanged++;
          }
        } finally {
          open--;
          ended();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, keys.length) }, worker));
    return { changed, refused, refusedKeys, reached: next, ...(stopped !== undefined ? { stopped } : {}) };
  }

  /**
   * Asks the peer for `key`. Any put frame from it under the get's id is an
   * answer, stored or refused; one carrying `key` is an answer for the key.
   * A get the table of pending requests refuses for the peer's (or its
   * site's) share waits for room, bounded, rather than going unheard at once.
   */
  private async get(session: PeerSession, key: string, refused: (record: unknown, key: string) => void): Promise<GetOutcome> {
    const owner = ownerOf(session);
    for (let waited = 0, pause = SHARE_RETRY_MS; ; waited += pause, pause = Math.min(pause * 2, SHARE_RETRY_MAX_MS)) {
      const outcome = await new Promise<GetOutcome | undefined>((resolve) => {
        const id = randomId();
        let went = false;
        const heard = (reply: ToolDbMessage, from?: PeerSession, outcome: GetOutcome = "key") => {
          if (from !== session) return true; // not the peer asked: keep waiting
          resolve(putKey(reply) === key ? outcome : "other");
          return false;
        };
        const added = this.db.requests.add(id, REQUEST_TIMEOUT_MS, heard, () => resolve(went ? "unheard" : "unsent"), {
          key,
          owner,
          onRefused: (reply, from) => {
            if (heard(reply, from, "refused") !== false) return;
            this.db.requests.remove(id);
            if (putKey(reply) === key) refused((reply as { data: unknown }).data, key);
          },
        });
        if (!added) return resolve(undefined);
        // Sent now, or after a ping to a 2.6.6 peer (legacy-reasks.ts); never, when the link closes first (it times out `unsent`).
        this.db.reasks.ask(session, key, () => {
          if ((went = session.send({ type: "get", id, key }))) return;
          this.db.requests.remove(id);
          resolve("unsent");
        });
      });
      if (outcome !== undefined) return outcome;
      if (waited >= SHARE_WAIT_MS || !(await this.pause(pause, session))) return "busy";
    }
  }

  /** Waits `ms`; false when the link or the node closed meanwhile (`close` wakes it). */
  private pause(ms: number, session: PeerSession): Promise<boolean> {
    const open = () => !session.connection.closed && !this.db.isClosed && !this.closed;
    if (!open()) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = () => {
        this.pausing.delete(wake);
        this.timers.clearTimeout(timer);
        resolve(open());
      };
      const timer = this.timers.setTimeout(wake, ms);
      this.pausing.add(wake);
    });
  }
}
