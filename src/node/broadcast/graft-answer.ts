/**
 * The answer to a GRAFT: the records a peer asked for by hash, sent the
 * way gets are answered. An outside check sent grafts naming one 900 KB
 * record 1,024 times each: every listed hash was read, parsed, serialised
 * and queued, past the link's send budget and after the link had closed
 * (5 grafts of 69 KB brought back 1.98 GB). So here:
 *
 * - a key is sent once per graft, however many of its hashes were listed
 *   (a graft listing a hash twice is refused before: tree-messages.ts);
 * - a link's grafts are answered one after another, and before each record
 *   the answer waits while the link is held by the send budget, as the
 *   peer's next get would (answers running side by side all found the
 *   link free at once and wrote their records in one burst);
 * - the record goes out as stored (checked JSON spliced into the frame),
 *   in a frame of its own type (a put, or a crdtPut for a CRDT record):
 *   what the key holds now may be of another type than the record whose
 *   hash was asked for;
 * - it stops as soon as the link or the tree closes.
 *
 * Each listed hash also costs the peer one message of its rate (link-table.ts),
 * so a graft costs no more than the gets it replaces.
 */
import type { TimerGroup } from "../../base/clock.js";
import type { PeerSession } from "../../network/peer-session.js";

/** How often an answer held back by the send budget looks again (ms), as the intake does for a held peer's requests. */
const HELD_RECHECK_MS = 20;

/** One record to send: its key and the fields of its frame but its type (id, tree fields). */
export interface GraftItem {
  key: string;
  fields: { id: string; [field: string]: unknown };
}

export interface GraftAnswerDeps {
  readonly timers: TimerGroup;
  /** The checked JSON stored under a key, and whether it is a CRDT record; `wanted` false stops before the parse. */
  readonly records: { getChecked(key: string, wanted: () => boolean): Promise<{ json: string; crdt: boolean } | undefined> };
}

export class GraftAnswers {
  private closed = false;
  /** Answers waiting for a held link, woken on close. */
  private readonly waiting = new Set<() => void>();
  /** The answer running or last queued on each link: the next one starts after it. */
  private readonly running = new WeakMap<PeerSession, Promise<number>>();

  constructor(private readonly deps: GraftAnswerDeps) {}

  /** Sends `items` to `to` in order, after the link's earlier answers; resolves with how many were sent. */
  answer(items: readonly GraftItem[], to: PeerSession): Promise<number> {
    const before = this.running.get(to);
    // An answer that failed (the store) is the caller's to report; the next one still runs.
    const next = before ? before.then(() => this.send(items, to), () => this.send(items, to)) : this.send(items, to);
    this.running.set(to, next);
    const forget = () => {
      if (this.running.get(to) === next) this.running.delete(to);
    };
    next.then(forget, forget);
    return next;
  }

  private async send(items: readonly GraftItem[], to: PeerSession): Promise<number> {
    const gone = () => this.closed || to.connection.closed;
    let sent = 0;
    for (const item of items) {
      if (!(await this.room(to, gone))) break;
      if (gone()) break;
      const stored = await this.deps.records.getChecked(item.key, () => !gone());
      if (stored === undefined || gone()) continue;
      // The type from the record sent, not from the one whose hash arrived: the key may hold another type now.
      if (to.sendFieldsWithRecord({ ...item.fields, type: stored.crdt ? "crdtPut" : "put" }, stored.json)) sent++;
    }
    return sent;
  }

  /** Waits while the link is held; false when it or the tree closed meanwhile. */
  private async room(to: PeerSession, gone: () => boolean): Promise<boolean> {
    while (!gone() && to.mustWait()) await this.pause();
    return !gone();
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.waiting.delete(wake);
        this.deps.timers.clearTimeout(timer);
        resolve();
      };
      const timer = this.deps.timers.setTimeout(wake, HELD_RECHECK_MS);
      this.waiting.add(wake);
    });
  }

  close(): void {
    this.closed = true;
    for (const wake of [...this.waiting]) wake();
  }
}
