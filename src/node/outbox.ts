import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import { type Clock, TimerGroup } from "../base/clock.js";
import { errorText } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";
import { OutboxIndex, type OutboxEntry } from "./outbox-index.js";
import { type Pass, awaits, blame, hold, isDue, isHeld, isRefusalClose, markSent } from "./outbox-delivery.js";
import { randomId } from "../base/random.js";
import { clientIdOf } from "../records/peer-record.js";
import type { RecordStore } from "./record-store.js";
import type { ToolDbRecord } from "../records/record.js";

/** A server dropped the link one of this node's writes came on, as refused (shaped as the `put-refused` event's PutRefusal). */
export interface LinkDropRefusal {
  /** The record's hash. */
  h: string;
  reason: string;
  /** The server's client id. */
  peer: string;
}

export interface OutboxHost {
  readonly records: RecordStore;
  readonly network: { readonly peers: PeerSession[] };
  readonly log: LogFn;
  /** The oldest unconfirmed write to `key` was dropped from a full outbox. */
  overflow(key: string): void;
  /** A server dropped the link as refused while this write alone was unanswered on it (a refusal in a `putAck` is reported by Acks). */
  refused(refusal: LinkDropRefusal): void;
  /** A put with `ack` went to this server link (its putAck, or a refusal, answers it: see server-watch.ts). */
  asked?(session: PeerSession): void;
  /** Whether this client trusts the server (server-trust.ts): only its confirmation lets a write go. Default: every server. */
  trusts?(session: PeerSession): boolean;
}

export interface OutboxOptions {
  /** Distinct keys with an unconfirmed write that the outbox tracks. */
  capacity: number;
  /** Re-send delay (ms) on a live link that stays silent (doubling per try up to 64×); a refused write's first wait. */
  retryInterval: number;
  /** Puts in flight per link while the outbox drains (flow control). */
  window?: number;
  clock?: Clock;
}

/** An entry as diagnostics see it (`Outbox.pending()`). */
export interface PendingWrite {
  key: string;
  h: string;
  need: number;
  /** Client ids of the servers that confirmed it, and of the live links it waits on. */
  confirmedBy: string[];
  waitingOn: string[];
  tries: number;
  refusals: number;
  held: boolean;
  suspect: boolean;
  /** `need` servers confirmed it (the put's `ack` was met), none this client trusts: kept for a server it trusts. */
  provisional: boolean;
}

const DEFAULT_WINDOW = 64;

/**
 * A client's writes that not enough servers confirmed yet, so that writes
 * made while no server is linked (or sent on a link that died before the
 * server stored them) reach the mesh. Every own write enters the outbox; a
 * server's `putAck` for that exact record (its hash) counts its server, and
 * once `need` distinct servers confirmed (the put's `ack`, at least one), one
 * of them a server this client trusts (listed by the operator, or one that
 * earned merit: server-trust.ts), the entry goes. Confirmed by `need`
 * servers none of which it trusts (anyone can prove a fresh key and say
 * "server", then drop what it acknowledged), the entry is kept as `met`
 * (persisted): it goes out only on links to trusted servers from then on,
 * in this run and after a restart, and at capacity it is the first dropped,
 * without an `overflow` (servers did confirm it). When a server link opens
 * (or is proven), every entry it does not carry yet is sent on it at once,
 * `window` puts in flight at a time; the rules of what is due where are in
 * outbox-delivery.ts.
 *
 * Only the latest write per key is tracked (it supersedes the earlier ones
 * under last-writer-wins), entries live in the key store (see OutboxIndex)
 * and survive a restart, and at `capacity` keys the `met` entry kept longest
 * is dropped, else the oldest entry (`overflow`): its record stays in the
 * local store but is no longer pushed. So a client that only ever links
 * servers it does not trust holds at most `capacity` `met` writes, the
 * latest (docs/security.md).
 */
export class Outbox {
  private readonly index: OutboxIndex;
  private readonly timers: TimerGroup;
  /** Monotonic time: the re-sends' pace and holds (in memory only) are timed by the retry timer, which a wall-clock step must not stretch. */
  private readonly clock: { now(): number };
  /** Links being drained, and whether another pass was asked for meanwhile. */
  private readonly draining = new Map<PeerSession, Pass | undefined>();
  private readonly progress = new Set<() => void>();
  private stopRetry: (() => void) | undefined;
  private closed = false;

  constructor(
    store: ToolDbStorageAdapter,
    private readonly host: OutboxHost,
    private readonly options: OutboxOptions,
  ) {
    this.index = new OutboxIndex(store, options.capacity);
    this.timers = new TimerGroup(options.clock);
    this.clock = { now: () => this.timers.monotonic() };
  }

  async load(): Promise<void> {
    await this.index.load();
    this.ensureRetry();
  }

  get size(): number {
    return this.index.size;
  }

  /** Writes fewer servers confirmed than the put asked for (`size` less those kept only for a trusted server). */
  get unconfirmed(): number {
    return this.index.size - this.index.metCount;
  }

  /** Tracks `record` as unconfirmed until `need` servers confirmed it (synchronously); resolves once that is persisted. */
  add(record: ToolDbRecord, need = 1): Promise<void> {
    const { persisted, evicted, dropped } = this.index.set(record.k, record.h, need);
    if (evicted !== undefined) this.host.overflow(evicted);
    if (dropped !== undefined) this.host.log("outbox: full, dropped %s, confirmed only by servers this client does not trust", dropped);
    this.ensureRetry();
    return persisted;
  }

  /** The write was just sent on every current link (a client's links all lead to servers). */
  sent(record: ToolDbRecord): void {
    const entry = this.index.get(record.k);
    const servers = this.servers();
    if (!entry || entry.h !== record.h || servers.length === 0) return;
    markSent(entry, servers, true, this.clock.now());
    for (const server of servers) this.host.asked?.(server);
  }

  /** The server of `from` (a proven one) stored these records (by hash). */
  confirmed(hashes: string[], from: PeerSession): void {
    const trusted = this.trusts(from);
    let kept = 0;
    for (const h of hashes) {
      const key = this.index.keyOfHash(h);
      const entry = key === undefined ? undefined : this.index.get(key);
      if (!entry) continue;
      (entry.confirmedBy ??= new Set()).add(from.address);
      entry.suspect = false;
      if (trusted) entry.trusted = true;
      if (entry.confirmedBy.size < entry.need && !entry.met) continue;
      if (entry.trusted) this.remove(entry.key);
      else if (!entry.met) {
        kept++;
        this.index.markMet(entry).catch((err) => this.host.log("outbox: could not mark %s confirmed: %s", entry.key, errorText(err)));
      }
    }
    if (kept > 0) this.host.log("outbox: %d writes confirmed by %s, no server this client trusts yet: kept for one", kept, from.clientId);
    this.notify();
  }

  /** Server `from` refused the record with hash `h` in its answer: it waits out its own backoff (the entries behind it do not). */
  refused(h: string, from: PeerSession): void {
    const key = this.index.keyOfHash(h);
    const entry = key === undefined ? undefined : this.index.get(key);
    if (entry) hold(entry, from, this.clock.now(), this.options.retryInterval);
    this.notify();
  }

  /** A new or newly proven server link: it gets at once every write it does not carry yet. */
  linked(session: PeerSession): void {
    if (session.isServer && this.index.size > 0) void this.drain(session, "new-link");
  }

  /**
   * A server link closed. Dropped as refused (too large, malformed, too many
   * refusals), it tells which write the server would not take (see `blame`
   * in outbox-delivery.ts). The writes that waited on it alone go out on the
   * other links at once.
   */
  unlinked(session: PeerSession, code: number, reason: string): void {
    if (!session.isServer || this.closed || this.index.size === 0) return;
    if (isRefusalClose(code)) {
      const unanswered = this.index.keys().flatMap((k) => {
        const entry = this.index.get(k)!;
        return entry.sentOn?.includes(session) && !entry.confirmedBy?.has(session.address) ? [entry] : [];
      });
      const culprit = blame(unanswered);
      if (culprit) {
        hold(culprit, session, this.clock.now(), this.options.retryInterval);
        this.host.refused({ h: culprit.h, peer: session.clientId, reason: `the server dropped the link it came on (${code}${reason ? ` ${reason}` : ""})` });
      }
    }
    this.notify();
    for (const server of this.servers()) void this.drain(server, "resend");
  }

  /** The unconfirmed writes with their delivery state (diagnostics). */
  pending(): PendingWrite[] {
    const now = this.clock.now();
    return this.index.keys().map((key) => {
      const e = this.index.get(key)!;
      const waitingOn = (e.sentOn ?? []).filter((l) => awaits(e, l)).map((l) => (l as PeerSession).clientId);
      const confirmedBy = [...(e.confirmedBy ?? [])].map(clientIdOf);
      const provisional = e.met === true;
      return { key, h: e.h, need: e.need, confirmedBy, waitingOn, tries: e.tries, refusals: e.refusals, held: isHeld(e, now), suspect: e.suspect === true, provisional };
    });
  }

  /** Resolves once the outbox's writes to its store have ended (before the store closes). */
  settled(): Promise<void> {
    return this.index.settled();
  }

  close(): void {
    this.closed = true;
    this.stopRetry?.();
    this.timers.clearAll();
    this.notify();
  }

  private trusts(session: PeerSession): boolean {
    return this.host.trusts?.(session) ?? true;
  }

  private servers(): PeerSession[] {
    return this.host.network.peers.filter((s) => s.isServer && !s.connection.closed);
  }

  private notify(): void {
    for (const check of [...this.progress]) check();
  }

  private remove(key: string): void {
    this.index.delete(key).catch((err) => this.host.log("outbox: could not free %s: %s", key, errorText(err)));
    if (this.index.size === 0) {
      this.stopRetry?.();
      this.stopRetry = undefined;
    }
  }

  private ensureRetry(): void {
    if (this.stopRetry || this.closed || this.index.size === 0) return;
    this.stopRetry = this.timers.every(this.options.retryInterval, () => {
      for (const server of this.servers()) void this.drain(server, "resend");
    });
  }

  /**
   * Sends the outbox's writes that are due on `session`: first the others,
   * `window` at a time, each window waiting until it is answered (or for
   * `retryInterval`); then each suspect alone. An entry whose key now holds
   * another record is dropped: that record superseded the write (or is
   * itself a newer write with its own entry). A pass asked for while one
   * runs on the link runs after it.
   */
  private async drain(session: PeerSession, pass: Pass): Promise<void> {
    if (this.draining.has(session)) {
      if (this.draining.get(session) !== "new-link") this.draining.set(session, pass);
      return;
    }
    this.draining.set(session, undefined);
    let sentTotal = 0;
    try {
      for (let next: Pass | undefined = pass; next !== undefined && this.open(session); next = this.draining.get(session)) {
        this.draining.set(session, undefined);
        const trusted = this.trusts(session);
        // Every write waits for a trusted server: nothing is due on this link.
        if (!trusted && this.index.metCount === this.index.size) continue;
        const keys = this.index.keys();
        const suspects = keys.filter((k) => this.index.get(k)?.suspect);
        const others = keys.filter((k) => !this.index.get(k)?.suspect);
        const window = this.options.window ?? DEFAULT_WINDOW;
        for (let i = 0; i < others.length && this.open(session); i += window) sentTotal += await this.sendBatch(session, others.slice(i, i + window), next, trusted);
        for (const key of suspects) if (this.open(session)) sentTotal += await this.sendBatch(session, [key], next, trusted);
      }
    } catch (err) {
      this.host.log("outbox: drain to %s stopped: %s", session.clientId, errorText(err));
    } finally {
      this.draining.delete(session);
      if (sentTotal > 0) this.host.log("outbox: sent %d writes to %s, %d unconfirmed", sentTotal, session.clientId, this.index.size);
    }
  }

  /** Sends the due entries among `keys` on `session` (`trusted`: its server is) and waits until they are answered; resolves how many went out. */
  private async sendBatch(session: PeerSession, keys: string[], pass: Pass, trusted: boolean): Promise<number> {
    const inFlight: OutboxEntry[] = [];
    for (const key of keys) {
      const entry = this.index.get(key);
      if (!entry) continue;
      // Confirmed by this server before it earned this client's trust (merit): that confirmation counts now.
      if (entry.met && trusted && entry.confirmedBy?.has(session.address)) {
        this.remove(key);
        continue;
      }
      if (!isDue(entry, session, pass, this.clock.now(), this.options.retryInterval, trusted)) continue;
      const record = await this.host.records.get(key);
      if (!this.open(session) || this.index.get(key) !== entry) continue;
      if (!record || record.h !== entry.h) {
        this.remove(key);
        continue;
      }
      const fresh = !(entry.sentOn?.includes(session) ?? false);
      session.send({ type: "put", id: randomId(), data: record, ack: true });
      markSent(entry, [session], fresh, this.clock.now());
      this.host.asked?.(session);
      inFlight.push(entry);
    }
    await this.answered(inFlight, session);
    return inFlight.length;
  }

  private open(session: PeerSession): boolean {
    return !this.closed && !session.connection.closed;
  }

  /** Resolves once no entry of `entries` waits on `session` any more (confirmed, refused, replaced), after retryInterval, or on close. */
  private answered(entries: OutboxEntry[], session: PeerSession): Promise<void> {
    const waiting = () => this.open(session) && entries.some((e) => this.index.get(e.key) === e && awaits(e, session));
    if (!waiting()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.progress.delete(check);
        this.timers.clearTimeout(timer);
        resolve();
      };
      const check = () => {
        if (!waiting()) done();
      };
      const timer = this.timers.setTimeout(done, this.options.retryInterval);
      this.progress.add(check);
    });
  }
}
