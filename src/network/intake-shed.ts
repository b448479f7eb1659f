/**
 * What a client lets go of when a link sends more than it holds waiting
 * (client-intake.ts): the records (puts, CRDT puts) queued from that link.
 * A review found that dropping the whole link let anyone who can write a key
 * a page subscribes to make the page drop its honest servers one after the
 * other (each relays the flood of updates; a slow page cannot keep up), and
 * lose their replies with it. Records are what can be asked for again: the
 * node asks the link for the newest record of each key it let go that it
 * subscribed to or listens to (`ShedAsks`). Anything else waiting
 * (acknowledgements, answers to queries and function calls) stays, and so
 * does a record answering a get this node waits for (its id is the get's,
 * its key the key asked): the answer to asking again, or to the app's own
 * `getData`, is never let go (a review found a page's `getData` answered by
 * a shedding link came back null).
 */

import type { TimerGroup, TimerHandle } from "../base/clock.js";

/** Keys of records let go that are asked again at most, per ask. */
export const MAX_SHED_KEYS = 4096;

/** The key and id of a record frame (put, crdtPut); undefined for any other frame. */
export function recordFrame(frame: string): { key: string; id: string | undefined } | undefined {
  // Cheap test first: every record frame names its type; most other frames are not parsed at all.
  if (!frame.includes('"put"') && !frame.includes('"crdtPut"')) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(frame);
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null) return undefined;
  const { type, id, data } = message as { type?: unknown; id?: unknown; data?: { k?: unknown } | null };
  if (type !== "put" && type !== "crdtPut") return undefined;
  const key = data?.k;
  return typeof key === "string" ? { key, id: typeof id === "string" ? id : undefined } : undefined;
}

/** True when a record of `key` under `id` answers a get this node waits for: such a record is never let go. */
export type AwaitedReply = (id: string, key: string) => boolean;

/**
 * A `keep` for LinkIntake.shed: record frames go (their keys given to
 * `letGo`), answers to gets this node waits for and every other frame stay.
 */
export function keepUnlessRecord(awaited: AwaitedReply, letGo: (key: string) => void): (frame: string) => boolean {
  return (frame) => {
    const record = recordFrame(frame);
    if (record === undefined || (record.id !== undefined && awaited(record.id, record.key))) return true;
    letGo(record.key);
    return false;
  };
}

/**
 * Keys of the records a link let go, asked of it again: at once (on the
 * next turn, so one shedding's keys go together), then at most once every
 * `everyMs` while more are let go. Before, a link's keys were asked only
 * once its records had stopped for a second: an honest server relaying a
 * busy key never stops, so a page that had let go of its records never
 * asked and took none of its updates again (found in review). The answers
 * are never let go (see `keepUnlessRecord`), so one asked at once does not
 * wait behind the rest of a flood that is let go.
 */
export class ShedAsks {
  private readonly keys = new Set<string>();
  private timer: TimerHandle | undefined;
  private askedAt = Number.NEGATIVE_INFINITY;
  private ended = false;

  constructor(
    private readonly timers: TimerGroup,
    private readonly everyMs: number,
    private readonly ask: (keys: string[]) => void,
  ) {}

  /** A record of `key` was let go. */
  note(key: string): void {
    if (this.ended) return;
    if (this.keys.size < MAX_SHED_KEYS) this.keys.add(key);
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.askedAt + this.everyMs - this.timers.monotonic());
    this.timer = this.timers.setTimeout(() => this.flush(), wait);
  }

  cancel(): void {
    this.ended = true;
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private flush(): void {
    this.timer = undefined;
    if (this.ended || this.keys.size === 0) return;
    const keys = [...this.keys];
    this.keys.clear();
    this.askedAt = this.timers.monotonic();
    this.ask(keys);
  }
}

/**
 * A link's lasting shedding, past its own bound: from the overflow on, its
 * record frames are let go as they arrive (their keys given to `letGo`,
 * asked again by the link's ShedAsks) until none came for `quietMs` and
 * nothing of the link waits any more; then `done`. Only a link's own bound
 * starts one: it sent more than the client takes in, alone. A link that is
 * merely the largest when all links' frames are past their bound lets go of
 * what it holds waiting then, and no more (client-shedding.ts).
 */
export class RecordShed {
  private timer: TimerHandle | undefined;
  private ended = false;
  /** A `keep` for LinkIntake.shed and for frames as they arrive: record frames go (their keys noted), others stay. */
  readonly keep: (frame: string) => boolean;

  constructor(
    private readonly timers: TimerGroup,
    private readonly quietMs: number,
    /** Frames of the link still waiting in its intake. */
    private readonly waiting: () => number,
    awaited: AwaitedReply,
    private readonly letGo: (key: string) => void,
    private readonly done: () => void,
  ) {
    this.keep = keepUnlessRecord(awaited, (key) => this.note(key));
    this.restart();
  }

  /** A record frame of `key` was let go. */
  note(key: string): void {
    this.letGo(key);
    this.restart();
  }

  cancel(): void {
    this.ended = true;
    this.timers.clearTimeout(this.timer);
  }

  private restart(): void {
    if (this.ended) return;
    this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => {
      if (this.waiting() > 0) return this.restart();
      this.ended = true;
      this.done();
    }, this.quietMs);
  }
}
