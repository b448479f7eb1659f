/**
 * What a client does when frames find no room in its intake
 * (client-intake.ts), and how the records it lets go are asked again
 * (intake-shed.ts). Answers to gets the client waits for, and every frame
 * that is not a record (acks, answers to queries and function calls: what
 * cannot be asked again), always stay.
 *
 * - A link past its own bound sent more than the client takes in, alone:
 *   it lets go of the records waiting from it and of those still coming
 *   (and of those taken in, not merged yet) until they stop for a second.
 * - When all links' queues are past their bound, the link holding the most
 *   (its share of the bound) lets go of the records it holds waiting at
 *   that moment, and nothing more: what it sends next is taken in as
 *   before. Several Sybil links (WebRTC peers, hostile servers) each holding
 *   less than an honest server relaying a busy key make that server's link
 *   the largest: a lasting shedding, as first built, let go of every later
 *   update it relayed, for as long as the key stayed busy (found in review).
 *
 * Either way the link is asked for the newest record of each key let go that
 * the client subscribed to or listens to: at once, then at most every 2 s
 * while more are let go, so a link that never goes quiet still has its
 * newest records taken. A link whose frames still find no room once its
 * records are gone is dropped.
 */
import type { TimerGroup } from "../base/clock.js";
import type { IntakeLimits, LinkIntake } from "./fair-intake.js";
import { RecordShed, ShedAsks, keepUnlessRecord } from "./intake-shed.js";
import type { PeerSession } from "./peer-session.js";

/** A link past its own bound lets go of its record frames until none came for this long (intake-shed.ts). */
const SHED_QUIET_MS = 1000;
/** Keys let go from a link are asked of it again at once, then at most this often (ms) while more are let go. */
const SHED_ASK_EVERY_MS = 2000;
/** Why a link's frames found no room. */
const ONE_LINK = "more frames waiting to be taken in than a client holds for one link";
const ALL_LINKS = "the most of the frames waiting to be taken in from all links, past what a client holds for all";

/** What shedding needs of a client's link. */
export interface ShedLink {
  session: PeerSession | undefined;
  intake?: LinkIntake;
  /** Its lasting shedding, past its own bound. */
  shed: RecordShed | undefined;
  /** Keys of records it let go, to ask again (made at its first shedding). */
  asks?: ShedAsks | undefined;
}

export interface SheddingHost<L extends ShedLink> {
  readonly timers: TimerGroup;
  readonly limits: IntakeLimits;
  /** Reports a MEMORY_LIMIT refusal on the link. */
  refused(link: L, reason: string): void;
  /** Closes the link (OVERLOADED): what it sent found no room. */
  drop(link: L, reason: string): void;
  /** Ask the session again for the newest record of each of `keys`, records of which were let go. */
  askAgain(session: PeerSession, keys: string[]): void;
  /** True when a record of `key` under `id` from `session` answers a get this node waits for: it is never let go. */
  awaitsReply(session: PeerSession, id: string, key: string): boolean;
}

export class ClientShedding<L extends ShedLink> {
  constructor(private readonly host: SheddingHost<L>) {}

  /** `frame` found no room: the link's queue is full, or (`allLinks`) all links' are and this link holds the most. */
  overflowed(link: L, frame: string, allLinks: boolean): void {
    const intake = link.intake;
    if (!intake) return;
    const why = allLinks ? ALL_LINKS : ONE_LINK;
    let keep: (frame: string) => boolean;
    if (allLinks) {
      keep = this.letGoWaiting(link);
      // What it held waiting is gone: the frame that found no room is the first of what it sends next.
      if (!this.halfFull(intake) && intake.fits(frame)) return intake.push(frame);
    } else {
      keep = this.start(link).keep;
      intake.shed(keep);
    }
    if (!keep(frame)) return; // a record: let go with the others
    // Only a queue still half full of other frames drops the link: otherwise every frame would walk it again.
    if (!this.halfFull(intake) && intake.fits(frame)) intake.push(frame);
    else this.dropLink(link, `${why}, not records: link dropped`);
  }

  /** All links' queues are past their bound and this link holds the most: the records it holds waiting go, or, with none, the link. */
  crowded(link: L): void {
    const intake = link.intake;
    if (!intake) return;
    const held = intake.queue.length;
    this.letGoWaiting(link);
    if (intake.queue.length === held) this.dropLink(link, `${ALL_LINKS}, not records: link dropped`);
  }

  /**
   * All links' queues are past their bound and `link` holds the most: the
   * records waiting from it now are let go (and reported), nothing it sends
   * after them. Returns the `keep` used.
   */
  private letGoWaiting(link: L): (frame: string) => boolean {
    const intake = link.intake!;
    const session = link.session;
    let records = 0;
    const keep =
      link.shed?.keep ??
      keepUnlessRecord(
        (id, key) => session !== undefined && this.host.awaitsReply(session, id, key),
        (key) => {
          records++;
          this.asksOf(link).note(key);
        },
      );
    intake.shed(keep);
    if (records > 0) this.host.refused(link, `${ALL_LINKS}: the ${records} records it held waiting are let go, and asked again`);
    return keep;
  }

  private halfFull(intake: LinkIntake): boolean {
    const { maxQueuedMessages, maxQueuedBytes = Infinity } = this.host.limits;
    return intake.queue.length >= maxQueuedMessages / 2 || intake.queuedBytes >= maxQueuedBytes / 2;
  }

  /** Keys the link let go, asked of it again. */
  private asksOf(link: L): ShedAsks {
    link.asks ??= new ShedAsks(this.host.timers, SHED_ASK_EVERY_MS, (keys) => {
      if (link.session) this.host.askAgain(link.session, keys);
    });
    return link.asks;
  }

  /** The link's lasting shedding, past its own bound: started now (and reported) unless it is under way. */
  private start(link: L): RecordShed {
    if (link.shed) return link.shed;
    const session = link.session;
    const asks = this.asksOf(link);
    const shed = new RecordShed(
      this.host.timers,
      SHED_QUIET_MS,
      () => link.intake?.queue.length ?? 0,
      (id, key) => session !== undefined && this.host.awaitsReply(session, id, key),
      (key) => asks.note(key),
      () => this.done(link),
    );
    link.shed = shed;
    // Its records in flight, not merged yet, go too: an app's slow check of each would hold the link's newest back.
    if (session) session.letGo = (key) => shed.note(key);
    this.host.refused(link, `${ONE_LINK}: its records are let go until they stop, and asked again`);
    return shed;
  }

  private done(link: L): void {
    link.shed = undefined;
    if (link.session) link.session.letGo = undefined;
  }

  private dropLink(link: L, reason: string): void {
    if (link.session) link.session.letGo = undefined;
    link.shed?.cancel();
    link.asks?.cancel();
    link.intake?.close();
    this.host.refused(link, reason);
    this.host.drop(link, reason);
  }
}
