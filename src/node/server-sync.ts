import type { PeerSession } from "../network/peer-session.js";
import { RBSR_CAPABILITY, RangeSync } from "./sync/range-sync.js";
import { SyncIndex } from "./sync/sync-index.js";
import { CHANGES_CAPABILITY } from "./sync/change-sync.js";
import { syncIndexName } from "./options.js";
import type { SyncMessage } from "../records/messages.js";
import type { ToolDbMessage } from "../records/messages.js";
import { TimerGroup } from "../base/clock.js";
import { ErrorCode } from "../base/errors.js";
import { randomId } from "../base/random.js";
import { RunSchedule } from "./sync/run-schedule.js";
import type { NodeContext } from "./node-context.js";
import { ownerOf } from "./request-shares.js";

/** Gets in flight per link during a catch-up. */
const IN_FLIGHT = 64;
const REQUEST_TIMEOUT_MS = 5000;
/**
 * Gets of a legacy catch-up that may go unanswered in a row (timed out, or
 * given up by a full table of pending requests: neither is an answer)
 * before the catch-up with that peer stops. An outside check's fake legacy
 * servers listed 10,000 keys each and answered no get: every unanswered get
 * freed a worker that sent the next, 700,000 gets in 15 s.
 */
const MAX_MISSES = IN_FLIGHT;

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
  /** Catch-ups running now. */
  running: number;
  /** Catch-ups finished. */
  completed: number;
  /** Keys listed by peers, fetched so far, and of those the ones that changed this store. */
  keysListed: number;
  keysFetched: number;
  keysChanged: number;
  /** Reconciliation runs between tooldb-dht servers that ended, by how they went. */
  runs: { changes: number; range: number; incomplete: number };
  /** Records those runs sent to peers and fetched from them. */
  recordsPushed: number;
  recordsFetched: number;
}

export class ServerSync {
  readonly progress: SyncProgress = {
    running: 0,
    completed: 0,
    keysListed: 0,
    keysFetched: 0,
    keysChanged: 0,
    runs: { changes: 0, range: 0, incomplete: 0 },
    recordsPushed: 0,
    recordsFetched: 0,
  };

  private readonly maxKeys: number;
  /** Present on servers that keep the reconciliation index. */
  readonly range: RangeSync | undefined;
  private readonly schedule: RunSchedule | undefined;
  private readonly timers: TimerGroup;

  constructor(private readonly db: NodeContext) {
    const { options } = db;
    this.maxKeys = options.maxSyncKeys;
    this.timers = new TimerGroup(options.clock);
    if (options.server && options.serverSync) {
      const index = new SyncIndex(new options.storageAdapter(db, syncIndexName(options.storageName)), db.store, db.log);
      db.records.indexer = index;
      this.range = new RangeSync(db, index, options.rangeSync);
      this.range.on("done", (run) => {
        const p = this.progress;
        p.completed++;
        if (run.complete) p.runs[run.mode]++;
        else p.runs.incomplete++;
        p.recordsPushed += run.pushed;
        p.recordsFetched += run.fetched;
      });
      const range = this.range;
      const runOnce = async (session: PeerSession) => {
        // Counted down when the run returns, not on "done": no "done" fires after close, and a
        // node closed mid-run showed a catch-up running for ever.
        this.progress.running++;
        try {
          return (await range.run(session))?.complete ?? true; // undefined: one was already running on this link
        } finally {
          this.progress.running--;
        }
      };
      this.schedule = new RunSchedule(runOnce, this.timers, () => db.isClosed, options.random);
    }
  }

  /** Opens (or rebuilds) the index; resolves at once where none is kept. */
  open(): Promise<void> {
    return this.range ? this.range.index.open() : Promise.resolve();
  }

  close(): Promise<void> {
    this.timers.clearAll();
    this.range?.close();
    return this.range ? this.range.index.close() : Promise.resolve();
  }

  capabilities(): string[] {
    return this.range ? [RBSR_CAPABILITY, CHANGES_CAPABILITY] : [];
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
   * tooldb-dht servers the dialing side reconciles (see RunSchedule).
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
    session.send({ type: "query", id, key: "" });
  }

  private async fetch(session: PeerSession, keys: string[]): Promise<void> {
    let next = 0;
    let changed = 0;
    let misses = 0;
    const progress = this.progress;
    progress.running++;
    progress.keysListed += keys.length;
    const worker = async () => {
      while (next < keys.length && misses < MAX_MISSES && !session.connection.closed && !this.db.isClosed) {
        const key = keys[next++]!;
        const before = (await this.db.records.get(key).catch(() => undefined))?.h;
        if (await this.get(session, key)) misses = 0;
        else if (++misses === MAX_MISSES) this.db.log("sync with %s stopped: %d gets in a row went unanswered", session.clientId, MAX_MISSES);
        const after = (await this.db.records.get(key).catch(() => undefined))?.h;
        progress.keysFetched++;
        if (after !== before) {
          changed++;
          progress.keysChanged++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, keys.length) }, worker));
    progress.running--;
    progress.completed++;
    this.db.log("sync with %s: %d keys listed, %d changed here", session.clientId, keys.length, changed);
  }

  /** True when the peer answered; false on a timeout, or when the table of pending requests gave the get up or had no room for it. */
  private get(session: PeerSession, key: string): Promise<boolean> {
    return new Promise((resolve) => {
      const id = randomId();
      if (!this.db.requests.add(id, REQUEST_TIMEOUT_MS, () => resolve(true), () => resolve(false), undefined, ownerOf(session))) return resolve(false);
      session.send({ type: "get", id, key });
    });
  }
}
