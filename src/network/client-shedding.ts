/**
 * What a client does when frames find no room in its intake
 * (client-intake.ts): a link past its own bound, or the link holding the
 * most when all links' queues are past theirs, lets go of the records
 * waiting from it and of those still coming, and their keys are asked again
 * once they stop (intake-shed.ts); what else waits stays. A link whose
 * frames still find no room once its records are gone (answers, acks: what
 * cannot be asked again) is dropped.
 */
import type { TimerGroup } from "../base/clock.js";
import type { IntakeLimits, LinkIntake } from "./fair-intake.js";
import { RecordShed } from "./intake-shed.js";
import type { PeerSession } from "./peer-session.js";

/** A shedding link's record frames are let go until none came for this long (intake-shed.ts). */
const SHED_QUIET_MS = 1000;
/** Why a link's frames found no room. */
const ONE_LINK = "more frames waiting to be taken in than a client holds for one link";
const ALL_LINKS = "the most of the frames waiting to be taken in from all links, past what a client holds for all";

/** What shedding needs of a client's link. */
export interface ShedLink {
  session: PeerSession | undefined;
  intake?: LinkIntake;
  shed: RecordShed | undefined;
}

export interface SheddingHost<L extends ShedLink> {
  readonly timers: TimerGroup;
  readonly limits: IntakeLimits;
  /** Reports a MEMORY_LIMIT refusal on the link. */
  refused(link: L, reason: string): void;
  /** Closes the link (OVERLOADED): what it sent found no room. */
  drop(link: L, reason: string): void;
  /** The link's records stopped coming: `keys` of those let go, to ask again. */
  shedDone(session: PeerSession, keys: string[]): void;
}

export class ClientShedding<L extends ShedLink> {
  constructor(private readonly host: SheddingHost<L>) {}

  /** `frame` found no room: the link's queue is full, or (`allLinks`) all links' are and this link holds the most. */
  overflowed(link: L, frame: string, allLinks: boolean): void {
    const intake = link.intake;
    if (!intake) return;
    const why = allLinks ? ALL_LINKS : ONE_LINK;
    const shed = this.start(link, why);
    intake.shed(shed.keep);
    if (!shed.keep(frame)) return; // a record: let go with the others
    // Only a queue still half full of other frames drops the link: otherwise every frame would walk it again.
    if (!this.halfFull(intake) && intake.fits(frame)) intake.push(frame);
    else this.dropLink(link, `${why}, not records: link dropped`);
  }

  /** All links' queues are past their bound and this link holds the most: its records go, or, with none left, the link. */
  crowded(link: L): void {
    const intake = link.intake;
    if (!intake) return;
    const held = intake.queue.length;
    intake.shed(this.start(link, ALL_LINKS).keep);
    if (intake.queue.length === held) this.dropLink(link, `${ALL_LINKS}, not records: link dropped`);
  }

  private halfFull(intake: LinkIntake): boolean {
    const { maxQueuedMessages, maxQueuedBytes = Infinity } = this.host.limits;
    return intake.queue.length >= maxQueuedMessages / 2 || intake.queuedBytes >= maxQueuedBytes / 2;
  }

  /** The link's shedding, started now (and reported) unless it is under way. */
  private start(link: L, why: string): RecordShed {
    if (link.shed) return link.shed;
    const shed = new RecordShed(this.host.timers, SHED_QUIET_MS, () => link.intake?.queue.length ?? 0, (keys) => this.done(link, keys));
    link.shed = shed;
    // Its records in flight, not merged yet, go too: an app's slow check of each would hold the link's newest back.
    if (link.session) link.session.letGo = (key) => shed.note(key);
    this.host.refused(link, `${why}: its records are let go until they stop, then asked again`);
    return shed;
  }

  private done(link: L, keys: string[]): void {
    link.shed = undefined;
    if (link.session) link.session.letGo = undefined;
    if (link.session && keys.length > 0) this.host.shedDone(link.session, keys);
  }

  private dropLink(link: L, reason: string): void {
    if (link.session) link.session.letGo = undefined;
    link.shed?.cancel();
    link.intake?.close();
    this.host.refused(link, reason);
    this.host.drop(link, reason);
  }
}
