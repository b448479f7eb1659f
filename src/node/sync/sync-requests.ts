/**
 * Range sync's requests to its peers, waiting for their replies by id, in a
 * table of their own: the node's table (gets, queries) is shared with
 * clients, whose gets for missing keys could fill it and time a run's
 * requests out early. A reply counts only from the link it was asked on, and
 * a dropped link ends the wait at once (the run then stops; the next link
 * runs again).
 */
import type { Clock } from "../../base/clock.js";
import { randomId } from "../../base/random.js";
import type { PeerSession } from "../../network/peer-session.js";
import type { OutgoingMessage, ToolDbMessage } from "../../records/messages.js";
import { PendingRequests } from "../pending-requests.js";

/** How long a request waits for its reply (a responder skips requests queued longer: their askers gave up). */
export const SYNC_REQUEST_TIMEOUT_MS = 60_000;
/**
 * Requests waiting at once, all links: a run has a few in flight (ranges,
 * fetches, a push, a feed page) and there is one run a link; beyond this the
 * oldest is timed out early.
 */
const MAX_WAITING = 4096;

export class SyncRequests {
  private readonly pending: PendingRequests<ToolDbMessage, PeerSession>;

  constructor(clock?: Clock) {
    this.pending = new PendingRequests(MAX_WAITING, clock);
  }

  /** Sends `message` (or the `prepared` frame of that type under `id`) and resolves its reply, or undefined on timeout or a dropped link. */
  ask(session: PeerSession, message?: OutgoingMessage, id = message?.id ?? randomId(), prepared?: { frame: string; type: string }): Promise<ToolDbMessage | undefined> {
    return new Promise((resolve) => {
      const onClose = () => {
        this.pending.remove(id);
        resolve(undefined);
      };
      const done = (reply: ToolDbMessage | undefined) => {
        session.connection.off("close", onClose);
        resolve(reply);
      };
      // A reply from another link is not this one's: the request stays open.
      this.pending.add(id, SYNC_REQUEST_TIMEOUT_MS, (reply, from) => (from !== session ? true : done(reply)), () => done(undefined));
      if (session.connection.closed) return onClose();
      session.connection.on("close", onClose);
      if (prepared !== undefined) session.sendFrame(prepared.frame, prepared.type);
      else session.send(message!);
    });
  }

  /** A reply from `from`: true when a request of ours waited for it. */
  resolve(id: string, reply: ToolDbMessage, from: PeerSession): boolean {
    return this.pending.resolve(id, reply, from);
  }

  /** Times out every request still waiting (the node closes). */
  close(): void {
    this.pending.clear();
  }
}
