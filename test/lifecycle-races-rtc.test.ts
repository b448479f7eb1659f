/**
 * The WebRTC transport (a local WebTorrent tracker, loopback candidates)
 * under lifecycle races: close() right after construction, while the
 * tracker is being dialed, after ready, while two peers are forming a link,
 * twice at once and again after it resolved. Each close resolves, leaves no
 * handle, lets no event out after it, and later calls reject with CLOSED.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ErrorCode, ToolDb } from "../src/index.js";
import { NETWORK_EVENTS, TOOLDB_EVENTS, activeResources, assertNoLeftovers, settlesWithin, watchEmits } from "./helpers/lifecycle-probe.js";
import { FAST } from "./helpers/nodes.js";
import { type LocalTracker, localTracker, rtcOn } from "./helpers/tracker.js";
import { typed } from "./helpers/typed-error.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const unhandled = collectUnhandledRejections();
const CLOSE_MS = 5000;
let tracker: LocalTracker;
let topicSeq = 0;
before(async () => {
  tracker = await localTracker();
});
after(async () => {
  await tracker.close();
  assert.deepEqual(unhandled, [], "no unhandled rejection in the whole file");
});

/** Closes `db` as the races do; checks the handles against `handles` when given (else the caller does, later). */
async function closeChecked(db: ToolDb, what: string, handles?: Map<string, number>): Promise<void> {
  const node = watchEmits(db as never, TOOLDB_EVENTS);
  const net = watchEmits(db.network as never, NETWORK_EVENTS);
  await settlesWithin(Promise.all([db.close(), db.close()]), CLOSE_MS, what);
  node.closed();
  net.closed();
  await settlesWithin(db.close(), CLOSE_MS, "a third close");
  if (handles) await assertNoLeftovers(handles, what);
  assert.deepEqual(node.late, [], "no ToolDb event after close");
  assert.deepEqual(net.late, [], "no network event after close");
  await assert.rejects(db.putData("k", 1), typed(ErrorCode.CLOSED));
  await assert.rejects(db.getData("k", false, 50), typed(ErrorCode.CLOSED));
}

describe("WebRtcNetwork on a local tracker: close races", { timeout: 60_000 }, () => {
  for (const when of ["at construction", "turn 1", "turn 3", "turn 8", "after ready"] as const) {
    it(`close ${when}`, async () => {
      const handles = activeResources();
      const db = new ToolDb({ topic: `races-rtc-${topicSeq++}`, ...FAST, networkAdapter: rtcOn(tracker) });
      if (when.startsWith("turn ")) for (let i = Number(when.split(" ")[1]); i > 0; i--) await new Promise((r) => setImmediate(r));
      if (when === "after ready") await settlesWithin(db.ready, CLOSE_MS, "ready");
      await closeChecked(db, `close ${when}`, handles);
    });
  }

  it("close one peer while the two are forming a link (offers through the tracker in flight)", async () => {
    const handles = activeResources();
    const topic = `races-rtc-${topicSeq++}`;
    // Both announced: the offers of the later one are relayed to the other now, the answers not back yet.
    let started = 0;
    let onStart: () => void = () => undefined;
    const bothAnnounced = new Promise<void>((resolve) => (onStart = () => void (++started === 2 && resolve())));
    tracker.server.on("start", onStart);
    const a = new ToolDb({ topic, ...FAST, networkAdapter: rtcOn(tracker) });
    const b = new ToolDb({ topic, ...FAST, networkAdapter: rtcOn(tracker) });
    try {
      await settlesWithin(bothAnnounced, CLOSE_MS, "both peers' first announce");
      await closeChecked(a, "close during a link forming"); // b still holds its tracker link: handles are counted once both closed
    } finally {
      tracker.server.off("start", onStart);
      await b.close();
      await a.close();
    }
    await assertNoLeftovers(handles, "both peers closed");
  });
});
