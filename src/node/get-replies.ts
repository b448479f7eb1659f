/**
 * Waiting for the replies to one get (sent by this node, or forwarded for a
 * peer). A reply counts only when its record is for the key asked for: any
 * other is refused as a strike against its sender and the wait goes on, so a
 * peer cannot answer a get with a validly signed record of its own key.
 * Replies are matched by id alone on the wire, hence the check here.
 *
 * After the first good reply the wait lasts at most `getGraceMs` more (less
 * when every peer asked has answered: a peer that sends several records
 * under the id counts once), and the newest record seen wins, so a
 * single lying or stale server cannot pin an old version when others know
 * a newer one.
 */
import { ErrorCode } from "../base/errors.js";
import { incomingWins, type ToolDbRecord } from "../records/record.js";
import type { NodeContext } from "./node-context.js";
import type { RequestOwner } from "./request-shares.js";

export interface GetWait {
  /** How many peers the get went to (0: done at once). */
  asked(count: number): void;
}

/**
 * `owner`: the peer a forwarded get is held for; undefined (nothing waits) when it holds its share of the table.
 * `held`: the hash of the record this node held for the key when it asked (`PendingRequests.heldOf`).
 */
export function awaitNewest(db: NodeContext, id: string, key: string, timeoutMs: number, done: (record: ToolDbRecord | undefined) => void, owner?: undefined, held?: string): GetWait;
export function awaitNewest(db: NodeContext, id: string, key: string, timeoutMs: number, done: (record: ToolDbRecord | undefined) => void, owner: RequestOwner): GetWait | undefined;
export function awaitNewest(db: NodeContext, id: string, key: string, timeoutMs: number, done: (record: ToolDbRecord | undefined) => void, owner?: RequestOwner, held?: string): GetWait | undefined {
  let best: ToolDbRecord | undefined;
  /** The peers that answered (a peer sending several records under the id counts once). */
  const answered = new Set<string | undefined>();
  let expected = Number.POSITIVE_INFINITY;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    db.requests.remove(id);
    done(best);
  };
  const added = db.requests.add(
    id,
    timeoutMs,
    (message, from) => {
      if (message.type !== "put" && message.type !== "crdtPut") return true;
      const record = message.data as ToolDbRecord;
      if (record.k !== key) {
        const event = { code: ErrorCode.BAD_MESSAGE, reason: `reply to a get of ${JSON.stringify(key.slice(0, 64))} carries a record for another key`, key: record.k.slice(0, 128) };
        if (from) db.network.strikePeer(from, event.code, event.reason, event.key);
        else db.refused(event);
        return true;
      }
      // Each reply was merged into the store before it got here: a CRDT reply is the merged document, the latest is the fullest.
      if (!best || record.c !== null || incomingWins(best, record)) best = record;
      answered.add(from?.clientId);
      if (answered.size >= expected) finish();
      else db.requests.hurry(id, db.options.getGraceMs);
      return true;
    },
    finish,
    { key, owner, held },
  );
  if (!added) return undefined;
  return {
    asked(count: number) {
      expected = count;
      if (answered.size >= count) finish();
    },
  };
}
