/**
 * Rotation of a Hyperswarm client's swarm slots. A client that does not
 * announce the topic reaches servers only through the links hyperswarm
 * dials to the topic's announcers, and hyperswarm dials no more once it
 * holds `maxPeers` of them. Announcing a topic and proving a fresh key as a
 * server costs a stranger nothing, and a fake that answers what the
 * client's server watch asks (empty key queries, NOT_FOUND function calls,
 * acknowledged puts it then drops) is never dropped as unresponsive: enough
 * of them held every slot, so a real server announced later was never
 * reached (`test/hyperswarm-announce-eclipse.test.ts`: 16 fakes, 8 slots).
 *
 * So while the slots are full and the swarm knows another announcer, once a
 * tick (`rotateInterval`) the link that slot-rotation.ts picks (past
 * probation, no record the client asked for delivered within `meritWindow`)
 * is replaced, make before break: the swarm may hold one link more
 * (hyperswarm's `maxPeers` raised by one) and the topic is looked up again;
 * only once a link dialed since then finishes its handshake as a server is
 * the old link closed, its swarm key banned for COOLDOWN_TICKS, and the cap
 * lowered again. With no such link within `replaceTimeout` the rotation is
 * abandoned and the old link kept; a link it closes then (still
 * handshaking), one that lands after the rotation ended, and a newcomer
 * dropped because every other link earned its slot meanwhile are banned for
 * COOLDOWN_TICKS too (closed first, a client whose other
 * announcers stall or are gone lost a link each rotation, its only one with
 * `maxPeers` 1, until a tick found the slot unfilled). One rotation is in
 * flight at a time. A server that serves what the client reads or
 * subscribes to keeps its slot; links that give nothing take turns. Only
 * links the client asked for a record (a get or a subscribe) are judged: a
 * client that only writes keeps its slots.
 */
import type { PeerInfo } from "hyperswarm";
import type { TimerHandle } from "../base/clock.js";
import type { LogFn } from "../base/logger.js";
import type { Connection } from "./connection.js";
import type { PeerSession } from "./peer-session.js";
import { COOLDOWN_TICKS, SlotRotation, type SlotHolder } from "./slot-rotation.js";
import type { SwarmBans } from "./swarm-bans.js";

export interface SwarmSlotsHost {
  /** Whether the swarm holds as many links as it may (hyperswarm dials no more). */
  full(): boolean;
  /** Whether the swarm knows an announcer it is not linked to and has not banned (a freed slot goes to nobody otherwise). */
  canDialAnother(): boolean;
  /** Whether the swarm is dialing a peer now. */
  dialing(): boolean;
  /** Closes a link rotated out of its slot (and reports it). */
  rotateOut(connection: Connection, session: PeerSession | undefined): void;
  /** A slot was freed: look the topic up again so the swarm finds another announcer. */
  refresh(): void;
  /** A rotation began (true: one link over the cap may be dialed) or ended (false: the cap is back). */
  widen(on: boolean): void;
  /** How many links the swarm holds over its cap (a dial in flight when a rotation ended landed). */
  overCap(): number;
  /** Closes a link dialed past the cap after its rotation ended (no ban: it did nothing wrong). */
  closeExtra(connection: Connection): void;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  log: LogFn;
}

interface SwarmHolder extends SlotHolder {
  readonly connection: Connection;
  readonly info: PeerInfo;
  session: PeerSession | undefined;
}

/** A rotation in flight: the link to replace, links dialed after `afterSeq` may replace it, until `timer`. */
interface Replacing {
  readonly victim: SwarmHolder;
  readonly afterSeq: number;
  readonly timer: TimerHandle;
}

export class SwarmSlots {
  private readonly rotation: SlotRotation;
  /** The links the swarm dialed for this node, by connection. */
  private readonly held = new Map<Connection, SwarmHolder>();
  /** Peers rotated out, and the tick their swarm ban ends. */
  private readonly banned = new Map<PeerInfo, number>();
  private replacing: Replacing | undefined;

  constructor(
    private readonly host: SwarmSlotsHost,
    private readonly bans: SwarmBans,
    meritWindow: number,
    now: () => number,
    /** ms a rotation waits for a replacement linked as a server before it is abandoned. */
    private readonly replaceTimeout: number,
  ) {
    this.rotation = new SlotRotation({ meritWindow }, now);
  }

  /** Whether a rotation is in flight (a replacement being dialed). */
  get rotating(): boolean {
    return this.replacing !== undefined;
  }

  /** The swarm dialed `info` for this node: the link holds a slot until it closes. */
  dialed(connection: Connection, info: PeerInfo): void {
    // A dial a rotation began that landed after it ended: the slot it was for is not free.
    if (!this.replacing && this.host.overCap() > 0) {
      this.host.closeExtra(connection);
      this.abandon(info, "its link came up after the rotation it was dialed for ended");
      return;
    }
    const holder: SwarmHolder = { connection, info, session: undefined, sinceTick: this.rotation.tick, seq: this.rotation.nextSeq() };
    this.held.set(connection, holder);
    connection.on("close", () => {
      this.held.delete(connection);
      // The link to replace closed by itself: its slot is free, the extra one is not needed.
      if (this.replacing?.victim === holder) this.endRotation();
    });
  }

  /** A link's handshake is done: from now on it may be judged, and a server may replace the link a rotation is for. */
  sessionOpened(session: PeerSession): void {
    const holder = this.held.get(session.connection);
    if (!holder) return;
    holder.session = session;
    const r = this.replacing;
    if (r && holder.seq > r.afterSeq && session.provenServer) this.replaced(r, holder);
  }

  /**
   * The rotation timer fired: lift bans that are due, or all of them when a
   * slot stayed free (nothing dialing: the announcer the slot was freed for
   * could not be reached, and a client whose only server was rotated out for
   * a stale announce had no link for the whole ban); then free one slot if
   * the swarm is full and a link may go.
   */
  tick(): void {
    this.rotation.nextTick();
    const unfilled = !this.host.full() && !this.host.dialing();
    let lifted = false;
    for (const [info, until] of this.banned) {
      if (until > this.rotation.tick && !unfilled) continue;
      this.banned.delete(info);
      this.bans.release(info);
      lifted = true;
    }
    if (lifted && unfilled) this.host.refresh();
    // With no other announcer the link rotated out was the only one to have the slot back, after its ban: a client
    // with maxPeers 1 and one server went without a link 10 rotations out of 12.
    if (this.replacing || !this.host.full() || !this.host.canDialAnother()) return;
    const victim = this.candidate();
    if (!victim) return;
    this.host.log("dialing a replacement for swarm peer %s: it delivered nothing this node asked for lately", victim.info.publicKey.toString("hex").slice(0, 16));
    const afterSeq = this.rotation.nextSeq();
    const timer = this.host.setTimeout(() => {
      this.host.log("no server linked to replace swarm peer %s in %d ms: it keeps its slot", victim.info.publicKey.toString("hex").slice(0, 16), this.replaceTimeout);
      this.endRotation();
      // Links dialed for the rotation still in their handshakes hold no slot of their own (newest first).
      let excess = this.host.overCap();
      for (const h of [...this.held.values()].reverse()) {
        if (excess <= 0) break;
        if (h.seq <= afterSeq) continue;
        excess--;
        this.held.delete(h.connection);
        this.host.closeExtra(h.connection);
        this.abandon(h.info, `it was no server linked within ${this.replaceTimeout} ms`);
      }
    }, this.replaceTimeout);
    this.replacing = { victim, afterSeq, timer };
    this.host.widen(true);
    this.host.refresh();
  }

  /** The held link a rotation may replace now. Judged on what it was asked: a link never asked for a record (a client that only writes) is kept. */
  private candidate(except?: SwarmHolder): SwarmHolder | undefined {
    return this.rotation.victim([...this.held.values()].filter((h) => h !== except && h.session?.askedForRecords));
  }

  /** `replacement` is linked as a server: the link the rotation is for goes (or, if it earned its slot meanwhile, the newest merit-less one). */
  private replaced(r: Replacing, replacement: SwarmHolder): void {
    this.endRotation();
    const victim = this.held.has(r.victim.connection) && this.rotation.victim([r.victim]) ? r.victim : this.candidate(replacement);
    if (!victim) {
      // Every other link earned its slot meanwhile: the newcomer goes, the cap holds.
      if (this.host.overCap() > 0) {
        this.held.delete(replacement.connection);
        this.host.closeExtra(replacement.connection);
        this.abandon(replacement.info, "every link it could replace earned its slot meanwhile");
      }
      return;
    }
    const key = victim.info.publicKey.toString("hex");
    this.host.log("rotating swarm peer %s out of its slot: a server replaced it", key.slice(0, 16));
    this.rotation.rotated(key);
    this.coolDown(victim.info);
    this.held.delete(victim.connection);
    this.host.rotateOut(victim.connection, victim.session);
  }

  /**
   * A rotation's candidate whose link it closed (no server in time, too
   * late, or not needed): kept away for COOLDOWN_TICKS as a peer rotated out
   * is. Before, nothing kept it away: hyperswarm requeues a peer whose link
   * closed at its highest priority, so the next rotation dialed the same
   * stranger again, and again.
   */
  private abandon(info: PeerInfo, why: string): void {
    this.host.log("closing swarm link to %s, not dialed for %d rotations: %s", info.publicKey.toString("hex").slice(0, 16), COOLDOWN_TICKS, why);
    this.coolDown(info);
  }

  /** Banned in the swarm until COOLDOWN_TICKS from now (one hold a peer, however often it is cooled down). */
  private coolDown(info: PeerInfo): void {
    if (!this.banned.has(info)) this.bans.hold(info);
    this.banned.set(info, this.rotation.tick + COOLDOWN_TICKS);
  }

  private endRotation(): void {
    const r = this.replacing;
    if (!r) return;
    this.replacing = undefined;
    this.host.clearTimeout(r.timer);
    this.host.widen(false);
  }

  clear(): void {
    if (this.replacing) this.host.clearTimeout(this.replacing.timer);
    this.replacing = undefined;
    for (const info of this.banned.keys()) this.bans.release(info);
    this.held.clear();
    this.banned.clear();
  }
}
