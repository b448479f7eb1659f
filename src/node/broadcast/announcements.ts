/**
 * IHAVE announcements to the lazy links of the broadcast tree, batched over
 * `ihaveInterval` ms. Each names a record's hash and, beside it in `ks`, its
 * key: a receiver that no longer remembers the record as recently received
 * looks the key up in its store and asks for nothing it holds (see
 * held-check.ts). Without the key it could only ask (GRAFT), and records that
 * anti-entropy brings, which most servers hold, came back whole from each
 * announcer. A key too long to be worth its bytes goes as null (the receiver
 * asks for that one as before), and each message fits the frame limit.
 */
import type { TimerGroup, TimerHandle } from "../../base/clock.js";
import { randomId } from "../../base/random.js";
import { utf8Length } from "../../limits/frame-fit.js";
import type { PeerSession } from "../../network/peer-session.js";
import { TREE_LIMITS } from "../../records/tree-messages.js";

/** Hashes announced to one lazy link at most between two flushes; older ones are left to anti-entropy. */
const MAX_QUEUED_PER_PEER = 8192;
/** Keys longer than this (UTF-8 bytes of their JSON) are announced as null: the hash alone. */
const MAX_ANNOUNCED_KEY_BYTES = 256;
/** Bytes of an ihave besides its lists (type, id, to, field names). */
export const ENVELOPE_BYTES = 128;
/** Bytes of one hash in `hs` (64 hex digits, quotes, comma). */
export const HASH_BYTES = 67;

interface Queued {
  hs: string[];
  ks: (string | null)[];
}

export class Announcements {
  private readonly queued = new Map<PeerSession, Queued>();
  private timer: TimerHandle | undefined;

  constructor(
    private readonly timers: TimerGroup,
    private readonly intervalMs: number,
    /** The largest frame a peer takes (bytes). */
    private readonly maxFrameBytes: () => number,
    /** Told of each ihave sent (stats). */
    private readonly sent: () => void,
  ) {}

  add(session: PeerSession, hash: string, key: string): void {
    let queued = this.queued.get(session);
    if (!queued) this.queued.set(session, (queued = { hs: [], ks: [] }));
    if (queued.hs.length >= MAX_QUEUED_PER_PEER) return;
    queued.hs.push(hash);
    // A character takes at most 6 bytes of JSON (an escape): short keys need no measuring.
    queued.ks.push(key.length * 6 + 2 <= MAX_ANNOUNCED_KEY_BYTES || utf8Length(JSON.stringify(key)) <= MAX_ANNOUNCED_KEY_BYTES ? key : null);
    this.timer ??= this.timers.setTimeout(() => this.flush(), this.intervalMs);
  }

  /** A link closed or left the tree: what was queued for it is dropped. */
  drop(session: PeerSession): void {
    this.queued.delete(session);
  }

  clear(): void {
    this.queued.clear();
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private flush(): void {
    this.timer = undefined;
    const room = Math.max(HASH_BYTES + 8, this.maxFrameBytes() - ENVELOPE_BYTES);
    for (const [session, { hs, ks }] of this.queued) {
      let from = 0;
      let bytes = 0;
      for (let i = 0; i <= hs.length; i++) {
        const size = i < hs.length ? HASH_BYTES + (ks[i] === null ? 5 : utf8Length(JSON.stringify(ks[i])) + 1) : 0;
        if (i === hs.length || i - from >= TREE_LIMITS.maxHashes || (bytes + size > room && i > from)) {
          if (i > from) {
            session.send({ type: "ihave", id: randomId(), hs: hs.slice(from, i), ks: ks.slice(from, i) });
            this.sent();
          }
          from = i;
          bytes = 0;
        }
        bytes += size;
      }
    }
    this.queued.clear();
  }
}
