/**
 * One sync run per peer address at a time, whatever its links (a peer
 * dialed and dialing, or a reconnect while the old link's run still takes
 * its last records in). What a run keeps of a peer is keyed by its address
 * (its public key), not by the link: the change-feed checkpoints and the
 * sign-up retries saved with them (change-feed.ts), the quota holds and the
 * custom verifiers' kept places (change-sync.ts), the copy cursors
 * (copy-cursors.ts). Each run reads them, works, and writes them back; two
 * at once each wrote what it had seen (one run's retries list overwrote the
 * other's, a copy saved a cursor past pages the other had not stored). A
 * run on a second link waits for the first, then goes on from what it left
 * (by the change feeds, cheaply, when it completed).
 *
 * The peer's own runs with us (the responder side: its syncCommit writes our
 * checkpoint of it too) are not under this lock, which a run holds for its
 * whole length: a commit waiting for it would outlast the peer's request, and
 * two servers each running with the other would wait on each other. Our
 * checkpoint of a peer never moves backwards instead (ChangeFeed.setCheckpoint),
 * and the refusal counts a run reads cover every link of the peer
 * (base/peer-keyed.ts).
 */
import { ErrorCode, ToolDbError } from "../../base/errors.js";
import type { PeerSession } from "../../network/peer-session.js";

export class PeerRuns {
  /** The run that holds each peer address, as the promise of its release. */
  private readonly claims = new Map<string, Promise<void>>();

  /**
   * Claims `session`'s peer address for one run: resolves its release once no other run holds it (`waiting` is told
   * true while it waits, false when the wait ends). Throws when `session`'s link closes while it waits.
   */
  async acquire(session: PeerSession, waiting?: (on: boolean) => void): Promise<() => void> {
    let waited = false;
    try {
      for (;;) {
        if (session.connection.closed) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
        const release = this.claim(session.address);
        if (release) return release;
        if (!waited) waiting?.((waited = true));
        await this.idle(session);
      }
    } finally {
      if (waited) waiting?.(false);
    }
  }

  /** Resolves once the run holding `session`'s peer address released it, or once `session`'s link closed. */
  private async idle(session: PeerSession): Promise<void> {
    const held = this.claims.get(session.address);
    if (!held) return;
    let onClose!: () => void;
    const closed = new Promise<void>((resolve) => session.connection.once("close", (onClose = () => resolve())));
    await Promise.race([held, closed]).finally(() => session.connection.off("close", onClose));
  }

  private claim(peer: string): (() => void) | undefined {
    if (this.claims.has(peer)) return undefined;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    this.claims.set(peer, held);
    return () => {
      if (this.claims.get(peer) === held) this.claims.delete(peer);
      release();
    };
  }
}
