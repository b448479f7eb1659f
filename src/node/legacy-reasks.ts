/**
 * Asking a tool-db 2.6.6 peer again for a key it already sent on the link.
 *
 * 2.6.6 sends a record (by hash) once per peer: its adapter keeps the hashes
 * of every put and crdtPut it sent each peer (`processedOutHashes`, filled
 * by `sendToClientId` and `sendToAll`) and sends none of them to that peer
 * again, answers to gets and subscribes included. It clears a peer's list
 * only when a ping or pong from that peer arrives (`onClientMessage`, before
 * the message is handled). A second get of an unchanged key on the same
 * link went unanswered, and each read of a key this node holds waited out
 * its whole `timeoutMs` (docs/tool-db-api.md, compatibility notes).
 *
 * So this node remembers, for each unproven link (2.6.6 proves nothing in
 * its handshake: every tooldb-dht node does), the keys of the puts the peer
 * sent since this node last pinged it. Before it asks such a peer for one of
 * those keys (a get, a crdtGet, a subscribe), it sends a ping first (the
 * server-list request: 2.6.6 answers with a pong), which clears the peer's
 * list before the ask is read on the same ordered link. Clients too: a
 * server asks its clients for a key it does not hold (a read, a subscribe),
 * and a 2.6.6 client that sent that record on the link (its own write, a
 * relay, an earlier answer) left the ask unanswered. The list is cleared for every key at once, so a
 * burst of reads costs one ping. At most one ping per link every
 * PING_INTERVAL_MS: a get that needs one sooner waits for that slot, with
 * every other such get, then all go after one ping.
 */
import { TimerGroup, type Clock, type TimerHandle } from "../base/clock.js";
import type { PeerSession } from "../network/peer-session.js";

/** Pings to one 2.6.6 peer at most this often (ms). */
export const PING_INTERVAL_MS = 250;
/**
 * Characters of keys remembered per link to a server (keys may be 1,024
 * characters, and anyone can open an unproven link); past it, every key
 * counts as sent (the next ask pings, still at most one per interval).
 */
const MAX_KEY_CHARS = 16 * 1024;
/** The same for a link to a client: a server may hold many, and asks them only for keys it does not hold. */
const MAX_CLIENT_KEY_CHARS = 1024;

interface LinkState {
  /** Keys of the puts the peer sent since the last ping, and their characters. */
  readonly keys: Set<string>;
  chars: number;
  /** More than MAX_KEY_CHARS were sent: any key may be in the peer's list. */
  all: boolean;
  /** When the last ping was sent (-Infinity: never since the handshake's). */
  pingedAt: number;
  /** Asks waiting for the next ping, and the timer of its slot. */
  waiting: Array<() => void>;
  timer: TimerHandle | undefined;
  /** A ping is being signed and sent: the asks waiting go right after it. */
  pinging: boolean;
}

export interface LegacyReasksDeps {
  /** Monotonic time (ms): the ping slot's timer is armed from it. */
  now(): number;
  /** Sends the ping; resolves once it was written (or could not be). */
  ping(session: PeerSession): Promise<unknown>;
  clock?: Clock | undefined;
}

export class LegacyReasks {
  private readonly links = new WeakMap<PeerSession, LinkState>();
  private readonly timers: TimerGroup;
  private closed = false;
  /** Pings sent to 2.6.6 peers before asking again (metrics, tests). */
  pings = 0;

  constructor(private readonly deps: LegacyReasksDeps) {
    this.timers = new TimerGroup(deps.clock);
  }

  /** A put or crdtPut frame from `session` carried a record of `key`: a 2.6.6 peer will not send that record again. */
  received(session: PeerSession, data: unknown): void {
    if (session.proven) return;
    const key = (data as { k?: unknown } | null | undefined)?.k;
    if (typeof key !== "string") return;
    let state = this.links.get(session);
    if (!state) {
      state = { keys: new Set(), chars: 0, all: false, pingedAt: Number.NEGATIVE_INFINITY, waiting: [], timer: undefined, pinging: false };
      this.links.set(session, state);
    }
    if (state.all || state.keys.has(key)) return;
    state.chars += key.length;
    if (state.chars > (session.isServer ? MAX_KEY_CHARS : MAX_CLIENT_KEY_CHARS)) {
      state.all = true;
      state.keys.clear();
    } else state.keys.add(key);
  }

  /**
   * Whether an ask for `key` (a get, a crdtGet; undefined: asks that may
   * cover any key, a catch-up's key list) may go to `session` now: true, the
   * caller sends it; false, the peer would not answer it, and `later` sends
   * it after a ping (or never, should the link or node close first).
   */
  mayAsk(session: PeerSession, key: string | undefined, later: () => void): boolean {
    const state = session.proven ? undefined : this.links.get(session);
    if (!state || !(state.all || (key === undefined ? state.keys.size > 0 : state.keys.has(key)))) return true;
    state.waiting.push(later);
    if (state.timer === undefined && !state.pinging) {
      const wait = Math.max(0, state.pingedAt + PING_INTERVAL_MS - this.deps.now());
      state.timer = this.timers.setTimeout(() => this.pingThenAsk(session, state), wait);
    }
    return false;
  }

  /**
   * The keys remembered are forgotten once the ping was written, not before:
   * an ask made while it is signed still waits for it (sent before it, it
   * would go unanswered), and every put read until then was sent before the
   * peer read the ping, so its list forgets it too.
   */
  private pingThenAsk(session: PeerSession, state: LinkState): void {
    state.timer = undefined;
    if (this.closed || session.connection.closed) {
      state.waiting = [];
      return;
    }
    state.pinging = true;
    state.pingedAt = this.deps.now();
    this.pings++;
    void this.deps.ping(session).then(() => {
      state.pinging = false;
      state.keys.clear();
      state.chars = 0;
      state.all = false;
      const asks = state.waiting;
      state.waiting = [];
      if (this.closed || session.connection.closed) return;
      for (const send of asks) send();
    });
  }

  /** `mayAsk`, sending with `send` now or after the ping. */
  ask(session: PeerSession, key: string | undefined, send: () => void): void {
    if (this.mayAsk(session, key, send)) send();
  }

  /** Drops the asks waiting for a ping slot (their reads time out as before). */
  close(): void {
    this.closed = true;
    this.timers.clearAll();
  }
}
