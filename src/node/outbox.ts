import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import { type Clock, TimerGroup } from "../base/clock.js";
import { errorText } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";
import { OutboxIndex, type OutboxEntry } from "./outbox-index.js";
import { randomId } from "../base/random.js";
import type { RecordStore } from "./record-store.js";
import type { ToolDbRecord } from "../records/record.js";

export interface OutboxHost {
  readonly records: RecordStore;
  readonly network: { readonly peers: PeerSession[] };
  readonly log: LogFn;
  /** The oldest unconfirmed write to `key` was dropped from a full outbox. */
  overflow(key: string): void;
}

export interface OutboxOptions {
  /** Distinct keys with an unconfirmed write that the outbox tracks. */
  capacity: number;
  /** First re-send delay (ms) of an unconfirmed write; doubles per try up to 64×. */
  retryInterval: number;
  /** Puts in flight per link while the outbox drains (flow control). */
  window?: number;
  clock?: Clock;
}

const DEFAULT_WINDOW = 64;
const MAX_BACKOFF_DOUBLINGS = 6;
/** Sends of one write after which a new link no longer gets it at once (see `linked`). */
const MAX_EAGER_TRIES = 3;

/**
 * A client's writes that no server has confirmed yet, so that writes made
 * while no server is linked (or sent on a link that died before the server
 * stored them) reach the mesh. Every own write enters the outbox; a server's
 * `putAck` for that exact record (its hash) removes it. When a server link
 * opens, every entry is sent on it, `window` puts in flight at a time; while
 * entries remain, unconfirmed ones are re-sent with a doubling delay.
 *
 * Only the latest write per key is tracked (it supersedes the earlier ones
 * under last-writer-wins), entries live in the key store (see OutboxIndex)
 * and survive a restart, and at `capacity` keys the oldest entry is dropped
 * (`overflow`): its record stays in the local store but is no longer pushed.
 */
export class Outbox {
  private readonly index: OutboxIndex;
  private readonly timers: TimerGroup;
  private readonly clock: Pick<Clock, "now">;
  private readonly draining = new Set<PeerSession>();
  private readonly progress = new Set<() => void>();
  private stopRetry: (() => void) | undefined;
  private rotation = 0;
  private closed = false;

  constructor(
    store: ToolDbStorageAdapter,
    private readonly host: OutboxHost,
    private readonly options: OutboxOptions,
  ) {
    this.index = new OutboxIndex(store, options.capacity);
    this.timers = new TimerGroup(options.clock);
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  async load(): Promise<void> {
    await this.index.load();
    this.ensureRetry();
  }

  get size(): number {
    return this.index.size;
  }

  /** Tracks `record` as unconfirmed (synchronously); resolves once that is persisted. */
  add(record: ToolDbRecord): Promise<void> {
    const { persisted, evicted } = this.index.set(record.k, record.h);
    if (evicted !== undefined) this.host.overflow(evicted);
    this.ensureRetry();
    return persisted;
  }

  /** The write was just sent on every current link (a client's links all lead to servers). */
  sent(record: ToolDbRecord): void {
    const entry = this.index.get(record.k);
    const servers = this.host.network.peers.filter((s) => s.isServer);
    if (entry && entry.h === record.h && servers.length > 0) this.markSent(entry, servers);
  }

  /** A server stored these records (by hash): their entries are done. */
  confirmed(hashes: string[]): void {
    for (const h of hashes) {
      const key = this.index.keyOfHash(h);
      if (key !== undefined) this.remove(key);
    }
    for (const notify of [...this.progress]) notify();
  }

  /**
   * A new link: a server gets at once every write not sent yet, due for a
   * re-send, or sent only on links that closed since. The last kind only
   * MAX_EAGER_TRIES times: a write that makes servers drop the link (too
   * large for them, say) must not drop every new link; it waits for its
   * re-send delay instead.
   */
  linked(session: PeerSession): void {
    if (session.isServer && this.index.size > 0) void this.drain(session, true);
  }

  close(): void {
    this.closed = true;
    this.stopRetry?.();
    this.timers.clearAll();
    for (const notify of [...this.progress]) notify();
  }

  private remove(key: string): void {
    this.index.delete(key).catch((err) => this.host.log("outbox: could not free %s: %s", key, errorText(err)));
    if (this.index.size === 0) {
      this.stopRetry?.();
      this.stopRetry = undefined;
    }
  }

  private markSent(entry: OutboxEntry, sessions: PeerSession[]): void {
    entry.sentAt = this.clock.now();
    entry.sentOn = sessions;
    entry.tries++;
  }

  private isDue(entry: OutboxEntry, now: number, onNewLink: boolean): boolean {
    if (entry.sentAt === undefined) return true;
    if (onNewLink && entry.tries <= MAX_EAGER_TRIES && (entry.sentOn ?? []).every((s) => s.connection.closed)) return true;
    return now - entry.sentAt >= this.options.retryInterval * 2 ** Math.min(Math.max(entry.tries - 1, 0), MAX_BACKOFF_DOUBLINGS);
  }

  private ensureRetry(): void {
    if (this.stopRetry || this.closed || this.index.size === 0) return;
    this.stopRetry = this.timers.every(this.options.retryInterval, () => this.retry());
  }

  /** Re-sends writes that stayed unconfirmed, through one server link at a time (rotating). */
  private retry(): void {
    if (this.draining.size > 0) return;
    const servers = this.host.network.peers.filter((s) => s.isServer);
    if (servers.length === 0) return;
    void this.drain(servers[this.rotation++ % servers.length]!, false);
  }

  /**
   * Sends the outbox's writes that are due on `session`, `window` at a time, waiting for
   * each window to be confirmed (or for `retryInterval`) before the next.
   * An entry whose key now holds another record is dropped: that record
   * superseded the write (or is itself a newer write with its own entry).
   */
  private async drain(session: PeerSession, onNewLink: boolean): Promise<void> {
    if (this.draining.has(session)) return;
    this.draining.add(session);
    const window = this.options.window ?? DEFAULT_WINDOW;
    let sentTotal = 0;
    try {
      const keys = this.index.keys();
      for (let i = 0; i < keys.length && this.open(session); i += window) {
        const inFlight: Array<{ key: string; h: string }> = [];
        for (const key of keys.slice(i, i + window)) {
          const entry = this.index.get(key);
          if (!entry || !this.isDue(entry, this.clock.now(), onNewLink)) continue;
          const record = await this.host.records.get(key);
          if (!this.open(session) || this.index.get(key) !== entry) continue;
          if (!record || record.h !== entry.h) {
            this.remove(key);
            continue;
          }
          session.send({ type: "put", id: randomId(), data: record, ack: true });
          this.markSent(entry, [session]);
          inFlight.push({ key, h: entry.h });
        }
        sentTotal += inFlight.length;
        await this.settled(inFlight, session);
      }
    } catch (err) {
      this.host.log("outbox: drain to %s stopped: %s", session.clientId, errorText(err));
    } finally {
      this.draining.delete(session);
      if (sentTotal > 0) this.host.log("outbox: sent %d writes to %s, %d unconfirmed", sentTotal, session.clientId, this.index.size);
    }
  }

  private open(session: PeerSession): boolean {
    return !this.closed && !session.connection.closed;
  }

  /** Resolves once every entry was confirmed (or replaced), after retryInterval, or on close. */
  private settled(entries: Array<{ key: string; h: string }>, session: PeerSession): Promise<void> {
    const pending = () => entries.some((e) => this.index.get(e.key)?.h === e.h);
    if (entries.length === 0 || !pending()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.progress.delete(check);
        this.timers.clearTimeout(timer);
        resolve();
      };
      const check = () => {
        if (!pending() || !this.open(session)) done();
      };
      const timer = this.timers.setTimeout(done, this.options.retryInterval);
      this.progress.add(check);
    });
  }
}
