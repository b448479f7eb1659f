/**
 * Which announcer a Hyperswarm client's slot rotation (swarm-slots.ts)
 * dials. Hyperswarm dials its queue by priority, and a peer whose link
 * closed or whose dial failed is queued again above one never dialed
 * (hyperswarm 4, lib/peer-info.js: one attempt is VERY_HIGH, none NORMAL;
 * a banned peer comes back at its old priority when a lookup meets it after
 * the ban). So when the rotation only widened the swarm's cap by one, the
 * fakes it had rotated out, back from their cooldown, were dialed before an
 * honest server announced later and never dialed: with a dozen of them
 * taking turns the server was never tried.
 *
 * The rotation now picks its candidate itself, among the peers the swarm
 * knows that it is not linked to and has not banned (rotated out, shunned,
 * abandoned), leaving out a peer dialed in vain and never linked (a stale
 * announce): the fewest dials by this node first (a peer never dialed
 * before any peer dialed), at random among equals. It has hyperswarm dial
 * that peer through its public `joinPeer` (an explicit peer is dialed at
 * once, past `maxPeers`; while one is set hyperswarm's queue dials nothing
 * at a full cap), and `leavePeer`s it as soon as the dial is settled; one
 * link past the cap at most, dials in flight included. A dial that fails is
 * reported (`failed`: shunned) and the next candidate picked. When no peer
 * can be picked so (none known, or hyperswarm would not dial it now), the
 * rotation falls back to widening the cap by one and lets hyperswarm's
 * queue choose, as before.
 *
 * What is left (docs/security.md): the peers a lookup returns are those the
 * DHT stores for the topic, which an attacker can flood; the pick is fair
 * among the peers known, not among all announcers of the topic.
 */
import type Hyperswarm from "hyperswarm";
import type { PeerInfo } from "hyperswarm";
import { LruMap } from "../base/bounded-set.js";
import type { LogFn } from "../base/logger.js";

/** Swarm keys whose dials are counted (about; LruMap keeps up to twice this). */
const REMEMBERED_PEERS = 1024;

/** What the pick reads and calls of hyperswarm 4 beyond its typings: its queue drain (as widening does). */
type Swarm = Hyperswarm & { _attemptClientConnections?: () => void };

export interface SwarmPickHost {
  swarm(): Hyperswarm | undefined;
  /** The swarm's cap (`maxPeers`): links and dials in flight past it, one at most. */
  cap(): number;
  random(): number;
  /** The picked peer's dial failed (no link): keep it away (another is picked). */
  failed(info: PeerInfo): void;
  /** No peer can be picked: let hyperswarm's queue dial one link past the cap. */
  fallback(): void;
  log: LogFn;
}

export class SwarmPick {
  /** Dials by this node, by swarm key. */
  private readonly dials = new LruMap<string, number>(REMEMBERED_PEERS);
  /** The peer dialed for the rotation in flight, and its `disconnectedTime` then (a change: the dial ended). */
  private picked: { info: PeerInfo; key: string; before: number } | undefined;
  /** A rotation waits for a candidate to be dialed. */
  private wanted = false;

  constructor(private readonly host: SwarmPickHost) {}

  /** Peers a rotation may dial: known, not linked, not banned, not dialed in vain without ever linking. */
  private candidates(): PeerInfo[] {
    const swarm = this.host.swarm();
    if (!swarm) return [];
    const linked = new Set([...swarm.connections].map((socket) => socket.remotePublicKey.toString("hex")));
    const out: PeerInfo[] = [];
    for (const [key, info] of swarm.peers) if (!info.banned && !linked.has(key) && !(info.disconnectedTime > 0 && !info.proven)) out.push(info);
    return out;
  }

  /** Whether the swarm knows a peer a rotation may dial (a freed slot goes to nobody otherwise). */
  knowsAnother(): boolean {
    return this.candidates().length > 0;
  }

  /** The swarm dialed `info` (a link up): one more dial of it; the picked peer's dial is settled, the rotation's candidate linked. */
  linked(info: PeerInfo): void {
    const key = info.publicKey.toString("hex");
    if (this.picked?.key !== key) this.dials.set(key, this.tries(info) + 1);
    else this.stop();
  }

  /** A rotation began: its candidate is dialed now, or once the dials in flight leave room for one past the cap. */
  start(): void {
    this.wanted = true;
    this.next();
  }

  /** The rotation ended: hyperswarm no longer dials the picked peer by itself. */
  stop(): void {
    this.wanted = false;
    const p = this.picked;
    this.picked = undefined;
    if (p) this.host.swarm()?.leavePeer(p.info.publicKey);
  }

  /** The swarm's state changed: a picked peer whose dial ended without a link failed, and the rotation may dial (another). */
  update(): void {
    const p = this.picked;
    if (p && p.info.disconnectedTime !== p.before && !this.settled()) {
      this.picked = undefined;
      // Kept away before it is left: hyperswarm forgets a peer left that is neither banned nor waiting for a retry.
      this.host.failed(p.info);
      this.host.swarm()?.leavePeer(p.info.publicKey);
    }
    this.next();
  }

  clear(): void {
    this.stop();
  }

  private next(): void {
    const swarm = this.host.swarm() as Swarm | undefined;
    if (!swarm || !this.wanted || this.picked) return;
    // One link past the cap at most, dials in flight included (one a rotation began may land after it ended).
    if (swarm.connections.size + swarm.connecting > this.host.cap()) return;
    if (this.dial(swarm)) return;
    this.wanted = false;
    this.host.fallback();
  }

  /** Dials the candidate with the fewest dials by this node (at random among equals). Returns whether hyperswarm began that dial. */
  private dial(swarm: Swarm): boolean {
    let best: PeerInfo[] = [];
    let fewest = Infinity;
    for (const info of this.candidates()) {
      const n = this.tries(info);
      if (n < fewest) [best, fewest] = [[], n];
      if (n === fewest) best.push(info);
    }
    if (best.length === 0) return false;
    const info = best[Math.min(best.length - 1, Math.floor(this.host.random() * best.length))]!;
    const key = info.publicKey.toString("hex");
    const connecting = swarm.connecting;
    this.picked = { info, key, before: info.disconnectedTime };
    swarm.joinPeer(info.publicKey);
    // A peer queued already is not queued again, and then hyperswarm does not drain its queue (nor its explicit peers).
    swarm._attemptClientConnections?.();
    if (swarm.connecting <= connecting && !this.settled()) {
      // Not dialed now (dialed a moment ago, or being dialed by the queue): the rotation lets the queue choose.
      this.picked = undefined;
      swarm.leavePeer(info.publicKey);
      return false;
    }
    this.dials.set(key, this.tries(info) + 1);
    this.host.log("dialing swarm peer %s for a rotation: %d dials before, the fewest of %d candidates", key.slice(0, 16), fewest, best.length);
    return true;
  }

  /** Whether the picked peer is linked now. */
  private settled(): boolean {
    const p = this.picked;
    const swarm = this.host.swarm();
    return !!p && !!swarm && [...swarm.connections].some((socket) => socket.remotePublicKey.toString("hex") === p.key);
  }

  /** Dials of `info` by this node: counted ones, and at least one if it was dialed before (a dial hyperswarm's queue made that never linked). */
  private tries(info: PeerInfo): number {
    return Math.max(this.dials.get(info.publicKey.toString("hex")) ?? 0, info.disconnectedTime > 0 ? 1 : 0);
  }
}
