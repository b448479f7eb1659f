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
 * So while the slots are full and the swarm knows another announcer, once a tick (`rotateInterval`) the link that
 * slot-rotation.ts picks (past probation, no record the client asked for
 * delivered within `meritWindow`) is closed and its swarm key banned for
 * COOLDOWN_TICKS, and the topic is looked up again: hyperswarm dials
 * another announcer into the free slot. A server that serves what the
 * client reads or subscribes to keeps its slot; links that give nothing
 * take turns. Only links the client asked for a record (a get or a
 * subscribe) are judged: a client that only writes keeps its slots.
 */
import type { PeerInfo } from "hyperswarm";
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
  log: LogFn;
}

interface SwarmHolder extends SlotHolder {
  readonly connection: Connection;
  readonly info: PeerInfo;
  session: PeerSession | undefined;
}

export class SwarmSlots {
  private readonly rotation: SlotRotation;
  /** The links the swarm dialed for this node, by connection. */
  private readonly held = new Map<Connection, SwarmHolder>();
  /** Peers rotated out, and the tick their swarm ban ends. */
  private readonly banned = new Map<PeerInfo, number>();

  constructor(
    private readonly host: SwarmSlotsHost,
    private readonly bans: SwarmBans,
    meritWindow: number,
    now: () => number,
  ) {
    this.rotation = new SlotRotation({ meritWindow }, now);
  }

  /** The swarm dialed `info` for this node: the link holds a slot until it closes. */
  dialed(connection: Connection, info: PeerInfo): void {
    this.held.set(connection, { connection, info, session: undefined, sinceTick: this.rotation.tick, seq: this.rotation.nextSeq() });
    connection.on("close", () => this.held.delete(connection));
  }

  /** A link's handshake is done: from now on it may be judged. */
  sessionOpened(session: PeerSession): void {
    const holder = this.held.get(session.connection);
    if (holder) holder.session = session;
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
    if (!this.host.full() || !this.host.canDialAnother()) return;
    // Judged on what it was asked: a link never asked for a record (a client that only writes) is kept.
    const victim = this.rotation.victim([...this.held.values()].filter((h) => h.session?.askedForRecords));
    if (!victim) return;
    const key = victim.info.publicKey.toString("hex");
    this.host.log("rotating swarm peer %s out of its slot: it delivered nothing this node asked for lately", key.slice(0, 16));
    this.rotation.rotated(key);
    this.bans.hold(victim.info);
    this.banned.set(victim.info, this.rotation.tick + COOLDOWN_TICKS);
    this.held.delete(victim.connection);
    this.host.rotateOut(victim.connection, victim.session);
    this.host.refresh();
  }

  clear(): void {
    for (const info of this.banned.keys()) this.bans.release(info);
    this.held.clear();
    this.banned.clear();
  }
}
