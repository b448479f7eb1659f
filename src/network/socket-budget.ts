/** An accepted socket, before and after it becomes a link. */
export interface BudgetedSocket {
  destroy(): void;
}

/**
 * The incoming sockets a server holds at once, counted from `accept`, before
 * any WebSocket upgrade or handshake: each holds a file descriptor, and when
 * the process runs out of them `accept` fails for everyone, the legitimate
 * client included. The capacity sits below the process's open-file limit
 * (open-file-limit.ts leaves room for stores, outgoing links and the DHT).
 * At capacity the oldest socket that is not a link yet (a raw TCP flood, a
 * request that never upgrades) is closed to make room; when every socket is
 * a link, the newcomer is refused and the connection gate's rules decide
 * who stays.
 */
export class SocketBudget {
  private open = 0;
  /** Accepted sockets that are not links yet, oldest first. */
  private readonly unlinked = new Set<BudgetedSocket>();
  private readonly counted = new WeakSet<BudgetedSocket>();

  constructor(public capacity = Infinity) {}

  /** Incoming sockets held now. */
  get size(): number {
    return this.open;
  }

  /**
   * A socket was accepted: null when it may stay, else why not (the caller
   * destroys it). `refused` hears of the socket closed to make room.
   */
  accept(socket: BudgetedSocket, refused: (reason: string) => void): string | null {
    if (this.open >= this.capacity) {
      const oldest = this.unlinked.values().next().value as BudgetedSocket | undefined;
      if (!oldest) return `too many open sockets (${this.capacity}), every one a link`;
      this.closed(oldest);
      oldest.destroy();
      refused(`closed to make room: too many open sockets (${this.capacity}); this one had not become a link`);
    }
    this.open++;
    this.counted.add(socket);
    this.unlinked.add(socket);
    return null;
  }

  /** The socket carries a link now: the gate's rules apply to it, it is no longer closed here to make room. */
  linked(socket: BudgetedSocket): void {
    this.unlinked.delete(socket);
  }

  /** The socket closed (idempotent). */
  closed(socket: BudgetedSocket): void {
    if (!this.counted.has(socket)) return;
    this.counted.delete(socket);
    this.unlinked.delete(socket);
    this.open--;
  }
}
