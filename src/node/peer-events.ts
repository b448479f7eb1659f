/**
 * What happens when a session opens or closes: tool-db's hooks
 * (onConnect, onPeerConnect, ...) and the node's peer events, and what a
 * new session gets (this node's subscriptions, server sync, the outbox, the
 * server watch), and a server forgiven by the watch.
 */
import type { PeerSession } from "../network/peer-session.js";
import { errorText } from "../base/errors.js";
import type { NodeContext } from "./node-context.js";
import { peerInfo } from "./node-types.js";
import { randomId } from "../base/random.js";

/** tool-db's hooks and connection flag as ToolDb holds them (users assign the hooks). */
export interface ConnectionHooks {
  isConnected: boolean;
  onConnect(): void;
  onDisconnect(): void;
  onPeerConnect(peerId: string): void;
  onPeerDisconnect(peerId: string): void;
  /** Keys this node subscribed to; re-sent to every new link. */
  readonly localSubscriptions: ReadonlySet<string>;
}

export class PeerEvents {
  constructor(private readonly db: NodeContext & ConnectionHooks) {}

  opened(session: PeerSession): void {
    const db = this.db;
    // tool-db 2.6.6's order: the peer first (its adapter calls onPeerConnect on the first ping or pong), then onConnect.
    this.safeHook(() => db.onPeerConnect(session.clientId));
    db.emit("peer-connect", peerInfo(session));
    if (!db.isConnected) {
      db.isConnected = true;
      this.safeHook(() => db.onConnect());
      db.emit("connect");
    }
    for (const key of db.localSubscriptions) session.send({ type: "subscribe", id: randomId(), key });
    if (db.options.server && session.isServer && db.options.serverSync) db.sync.start(session);
    db.broadcast.linked(session);
    if (!db.options.server) db.outbox.linked(session);
    db.serverWatch.linked(session);
  }

  /**
   * A server this client dropped as unresponsive served a good spell on
   * `session` (server-standing.ts): one drop forgiven. The dialer and
   * whoever listens (ServerSelection, DhtPeering) take one drop back.
   */
  recovered(session: PeerSession, drops: number): void {
    const db = this.db;
    if (db.isClosed) return;
    if (session.host !== undefined && session.port !== undefined) db.network.forgiveUnresponsive(session.host, session.port);
    db.emit("server-recovered", { ...peerInfo(session), drops });
  }

  /**
   * This client let go of records from `session` (its intake was full,
   * network/client-shedding.ts): the newest of each key it subscribed to or
   * listens to is asked of that session again, and the answer is noted as
   * one it waits for, so it is not let go in turn.
   */
  shed(session: PeerSession, keys: readonly string[]): void {
    const db = this.db;
    if (db.isClosed || session.connection.closed) return;
    for (const key of keys) {
      if (!db.localSubscriptions.has(key) && !db.keyListeners.has(key)) continue;
      const id = randomId();
      session.noteAskedAgain(id, key);
      // A 2.6.6 peer sent the record let go: it answers again only after a ping (legacy-reasks.ts).
      db.reasks.ask(session, key, () => void session.send({ type: "get", id, key, to: [] }));
    }
  }

  /** A link that went silent was heard again without closing: servers reconcile at once. */
  revived(session: PeerSession, silentMs: number): void {
    const db = this.db;
    db.log("link to %s revived after %d ms of silence", session.clientId, silentMs);
    if (db.options.server && session.isServer && db.options.serverSync) db.sync.start(session);
  }

  closed(session: PeerSession, code: number, reason: string): void {
    const db = this.db;
    db.remoteSubscriptions.dropPeer(session.clientId);
    db.serverWatch.forget(session);
    if (!db.options.server) db.outbox.unlinked(session, code, reason);
    db.broadcast.unlinked(session);
    this.safeHook(() => db.onPeerDisconnect(session.clientId));
    db.emit("peer-disconnect", { ...peerInfo(session), code, reason });
    if (db.isConnected && db.network.peerCount === 0) {
      db.isConnected = false;
      this.safeHook(() => db.onDisconnect());
      db.emit("disconnect");
    }
  }

  private safeHook(fn: () => void): void {
    if (this.db.isClosed) return;
    try {
      fn();
    } catch (err) {
      this.db.log("hook threw: %s", errorText(err));
    }
  }
}
