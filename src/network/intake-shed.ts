/**
 * What a client lets go of when a link sends more than it holds waiting
 * (client-intake.ts): the records (puts, CRDT puts) queued from that link.
 * A review found that dropping the whole link let anyone who can write a key
 * a page subscribes to make the page drop its honest servers one after the
 * other (each relays the flood of updates; a slow page cannot keep up), and
 * lose their replies with it. Records are what can be asked for again: once
 * the flood is over, the node asks the link for the newest record of each
 * key it let go that it subscribed to or listens to. Anything else waiting
 * (acknowledgements, answers to queries and function calls) stays.
 */

import type { TimerGroup, TimerHandle } from "../base/clock.js";

/** Keys of records let go that are asked again at most, per overflow. */
export const MAX_SHED_KEYS = 4096;

/** The key of a record frame (put, crdtPut), undefined for any other frame. */
export function recordFrameKey(frame: string): string | undefined {
  // Cheap test first: every record frame names its type; most other frames are not parsed at all.
  if (!frame.includes('"put"') && !frame.includes('"crdtPut"')) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(frame);
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null) return undefined;
  const { type, data } = message as { type?: unknown; data?: { k?: unknown } | null };
  if (type !== "put" && type !== "crdtPut") return undefined;
  const key = data?.k;
  return typeof key === "string" ? key : undefined;
}

/**
 * A link's shedding: from the overflow on, its record frames are let go as
 * they arrive (their keys noted) until none came for `quietMs` and nothing
 * of the link waits any more; then `done` gets the keys, to ask again. The
 * asking waits for the end: a reply sent at once waited behind the rest of
 * the flood (at one check a second, a page with an app's slow check of the
 * key would have waited hours for it).
 */
export class RecordShed {
  readonly keys = new Set<string>();
  private timer: TimerHandle | undefined;
  private ended = false;

  constructor(
    private readonly timers: TimerGroup,
    private readonly quietMs: number,
    /** Frames of the link still waiting in its intake. */
    private readonly waiting: () => number,
    private readonly done: (keys: string[]) => void,
  ) {
    this.restart();
  }

  /** A `keep` for LinkIntake.shed: record frames go (their keys noted), others stay. */
  readonly keep = (frame: string): boolean => {
    const key = recordFrameKey(frame);
    if (key === undefined) return true;
    this.note(key);
    return false;
  };

  /** A record frame of `key` was let go. */
  note(key: string): void {
    if (this.keys.size < MAX_SHED_KEYS) this.keys.add(key);
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
      this.done([...this.keys]);
    }, this.quietMs);
  }
}
