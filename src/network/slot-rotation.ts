/**
 * Who holds a node's peer slots when they are full: its WebRTC data-channel
 * slots (webrtc-network.ts) and a Hyperswarm client's swarm slots
 * (swarm-slots.ts). Neither a WebTorrent tracker's signalling nor a topic
 * lookup carries any evidence of who a peer is (anyone can offer under any
 * peer id, or announce a topic), so a full node must not keep whoever linked
 * first: strangers with fresh keys that link first would hold its slots
 * forever, and an honest peer that joins later would never link (outside
 * check "D5": 8 such peers held all 8 of a page's slots; 16 behaving fakes
 * held a Hyperswarm client's 8). Slots rotate on merit instead, as
 * BitTorrent's optimistic unchoke does, at a bounded pace:
 *
 *  - time runs in ticks of `rotateInterval` ms (the transport's timer, so a
 *    test drives it); at most one held link is replaced per tick, however
 *    many offers arrive, so an honest mesh churns at most one link a tick
 *    and a flood of offers cannot empty a node's slots;
 *  - a link is on probation until two ticks have begun since it was taken
 *    (at least one whole `rotateInterval`): it cannot be replaced before;
 *  - a link whose peer delivered, within `meritWindow` ms, a record this
 *    node asked for (a reply to its read, an update of a key it subscribed
 *    to or listens to: `PeerSession.servedAt`; a record the node held when
 *    it asked counts only on node/merit-records.ts's terms) is never
 *    replaced: what a peer proves by answering is what a Sybil that only
 *    holds a slot lacks.
 *    Unsolicited records, however valid, and mere traffic earn nothing;
 *  - among the others the one that delivered such a record longest ago (or
 *    never), then one that never answered a query, then the oldest goes
 *    first: links that give nothing take turns. When a peer last answered
 *    does not order them: a peer times its answers as it likes (it may
 *    answer a query several times), and a fake answering last each time
 *    had the honest link beside it replaced first;
 *  - a peer whose link was replaced is refused, by its peer id (tracker
 *    peer id, swarm key), for `COOLDOWN_TICKS`, so it does not win its slot
 *    straight back.
 *
 * Evidence a stranger cannot fake for free is only what it serves; the
 * residual risks are in docs/security.md ("WebRTC slots").
 */
import { LruMap } from "../base/bounded-set.js";

/** What the policy reads of a session: when its peer last delivered what this node asked for (ms; 0 = never). */
export interface SlotEvidence {
  readonly servedAt: number;
  readonly answeredAt: number;
}

/** A held link, as the policy sees it. */
export interface SlotHolder {
  /** The tick in which the link was taken (`SlotRotation.tick`). */
  readonly sinceTick: number;
  /** Order in which links were taken: the oldest goes first among equals. */
  readonly seq: number;
  /** Its session, once the handshake is done: links still connecting or handshaking are never replaced. */
  readonly session: SlotEvidence | undefined;
}

export interface SlotRotationOptions {
  /** A link that delivered an asked-for record within this many ms is kept. */
  meritWindow: number;
}

/** Ticks a link is kept before it may be replaced: two tick starts, so at least one whole interval. */
export const PROBATION_TICKS = 2;
/** Ticks a replaced peer's tracker id is refused. */
export const COOLDOWN_TICKS = 10;
/** Tracker peer ids remembered as replaced (about; LruMap keeps up to twice this). */
const COOLDOWN_CAPACITY = 256;

export class SlotRotation {
  private ticks = 0;
  /** The tick of the last replacement (-1: none yet). */
  private rotatedIn = -1;
  private seqs = 0;
  /** Tracker peer id -> the tick its link was replaced. */
  private readonly replaced = new LruMap<string, number>(COOLDOWN_CAPACITY);

  constructor(
    private readonly options: SlotRotationOptions,
    private readonly now: () => number,
  ) {}

  /** The current tick, for a new holder's `sinceTick`. */
  get tick(): number {
    return this.ticks;
  }

  /** A number for a new holder's `seq`. */
  nextSeq(): number {
    return ++this.seqs;
  }

  /** The transport's rotation timer fired. */
  nextTick(): void {
    this.ticks++;
  }

  /** Whether a newcomer may take a held slot this tick (none replaced yet in it). */
  get mayRotate(): boolean {
    return this.rotatedIn < this.ticks;
  }

  /**
   * The held link a newcomer may replace now, if any: past probation, with
   * no asked-for record delivered lately, and no replacement yet this tick.
   */
  victim<H extends SlotHolder>(held: Iterable<H>): H | undefined {
    if (!this.mayRotate) return undefined;
    const now = this.now();
    let best: H | undefined;
    for (const h of held) {
      const s = h.session;
      if (!s || this.ticks - h.sinceTick < PROBATION_TICKS) continue;
      if (s.servedAt > 0 && now - s.servedAt < this.options.meritWindow) continue;
      if (!best || before(h, best)) best = h;
    }
    return best;
  }

  /** A held link (of peer `peerId`) was replaced: no other this tick, and its peer waits out the cooldown. */
  rotated(peerId: string | undefined): void {
    this.rotatedIn = this.ticks;
    if (peerId) this.replaced.set(peerId, this.ticks);
  }

  /** Whether the peer `peerId` was replaced too recently to take a slot again. */
  coolingDown(peerId: string | undefined): boolean {
    if (!peerId) return false;
    const at = this.replaced.get(peerId);
    if (at === undefined) return false;
    if (this.ticks - at < COOLDOWN_TICKS) return true;
    this.replaced.delete(peerId);
    return false;
  }
}

/** Whether `a` goes before `b`: delivered asked-for records longer ago, then never answered a query, then older. */
function before(a: SlotHolder, b: SlotHolder): boolean {
  const x = a.session!;
  const y = b.session!;
  if (x.servedAt !== y.servedAt) return x.servedAt < y.servedAt;
  if (x.answeredAt > 0 !== y.answeredAt > 0) return x.answeredAt === 0;
  return a.seq < b.seq;
}
