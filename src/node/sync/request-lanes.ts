/**
 * A responder's queues of one link's sync requests: each lane answers its
 * requests in order, one at a time, and lanes go on side by side. Range sync
 * keeps pushes (whose answer waits until every record was verified and
 * merged) in a lane of their own, so a range round or a fetch from the same
 * peer is not held behind a push's signature checks. Bounded per lane: a
 * link that queues more is flooding.
 */
interface Lane {
  tail: Promise<unknown>;
  length: number;
}

export class RequestLanes<Link extends object> {
  private readonly lanes = new Map<string, WeakMap<Link, Lane>>();

  constructor(private readonly maxQueued: number) {}

  /**
   * Runs `task` after the link's earlier tasks in `lane`; resolves when it
   * ran. Undefined (and `task` never runs) when that lane already holds
   * `maxQueued`. `task` must not reject.
   */
  enqueue(link: Link, lane: string, task: () => Promise<void>): Promise<void> | undefined {
    let byLink = this.lanes.get(lane);
    if (!byLink) this.lanes.set(lane, (byLink = new WeakMap()));
    const queue = byLink.get(link) ?? { tail: Promise.resolve(), length: 0 };
    if (queue.length >= this.maxQueued) return undefined;
    queue.length++;
    const ran = queue.tail.then(task).finally(() => queue.length--);
    queue.tail = ran;
    byLink.set(link, queue);
    return ran;
  }
}
