/**
 * How a client forgives a server it dropped as unresponsive (see
 * server-watch.ts). Every drop makes whoever picks servers (ServerSelection,
 * DhtPeering, the dialer) try that server after the others and wait longer
 * before it (5 s doubling to 10 min). Without forgiveness a server that was
 * slow once during a fault stayed last for as long as the client ran.
 *
 * A drop is forgiven by a good spell: one link to the server that stays
 * open for `recoverAfterMs` (default 10 min, the longest penalty) and in
 * that time answers at least MIN_GOOD_ANSWERS of the client's asks (its
 * queries, its acknowledged puts, the watch's probes), with nothing it was
 * asked left unanswered for long when the spell ends. One spell forgives one
 * drop; the next spell starts then. A link that closes, for any reason,
 * ends its spell, and a drop on it counts against the server again. So a
 * server that alternates good and bad earns back at most one drop per
 * `recoverAfterMs` of good service on one link, and each bad turn costs it
 * a new drop and the whole spell again: it cannot reset cheaply.
 */
import { LruMap } from "../base/bounded-set.js";

/** Asks a server must answer within one spell (besides its length) before a drop is forgiven. */
export const MIN_GOOD_ANSWERS = 3;
/** The default `unresponsiveRecovery` (ms): the longest penalty. */
export const DEFAULT_RECOVERY_MS = 10 * 60_000;
/** Servers whose drops are remembered at most (the least recently dropped are forgotten, and keep their penalty). */
const REMEMBERED_SERVERS = 1024;

/** One link's good spell so far. */
export interface Spell {
  /** When it began: the link opened, or the spell before it forgave a drop. */
  since: number;
  /** Asks answered since. */
  answers: number;
}

export class ServerStanding {
  /** Drops not yet forgiven, by server address. */
  private readonly drops = new LruMap<string, number>(REMEMBERED_SERVERS);

  /** `recoverAfterMs`: the length of a good spell; 0: drops are never forgiven. */
  constructor(readonly recoverAfterMs: number) {}

  /** The client dropped `address` as unresponsive; returns its drops not forgiven yet. */
  dropped(address: string): number {
    const drops = (this.drops.get(address) ?? 0) + 1;
    this.drops.set(address, drops);
    return drops;
  }

  /** Drops of `address` not forgiven yet. */
  dropsOf(address: string): number {
    return this.drops.get(address) ?? 0;
  }

  /**
   * The server at `address` answered an ask on the link whose spell this
   * is; `suspect`: something else asked on that link is long unanswered.
   * Returns the drops left when this answer completed a spell that forgave
   * one, else undefined.
   */
  answered(address: string, spell: Spell, now: number, suspect = false): number | undefined {
    spell.answers++;
    const drops = this.drops.get(address);
    if (!drops || this.recoverAfterMs <= 0 || suspect) return undefined;
    if (spell.answers < MIN_GOOD_ANSWERS || now - spell.since < this.recoverAfterMs) return undefined;
    spell.since = now;
    spell.answers = 0;
    if (drops === 1) this.drops.delete(address);
    else this.drops.set(address, drops - 1);
    return drops - 1;
  }
}
