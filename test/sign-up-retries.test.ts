/**
 * The bounds of a peer's sign-up retries (src/node/sync/sign-up-retries.ts): the ids of sign-ups a quota that refills
 * refused wait there while the checkpoint moves on, at most MAX_RETRY_IDS; past that, or when a refusal during the page
 * was none of its sign-ups, `add` says no and the change-feed run holds the checkpoint as before. Due ones are fetched
 * again once the quota refills; only those refused again stay.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerSession } from "../src/network/peer-session.js";
import type { NodeContext } from "../src/node/node-context.js";
import { MAX_RETRY_IDS, SignUpRetries } from "../src/node/sync/sign-up-retries.js";
import type { SyncIndex } from "../src/node/sync/sync-index.js";
import { ManualClock } from "./helpers/manual-clock.js";

/** A quota that refused the ids in `refused` (its count rising by one each) and refills in 1,000 ms; a feed in memory. */
function rig() {
  const clock = new ManualClock(1_000_000);
  const session = { address: "peer" } as PeerSession;
  let deferred = 0;
  const refusedAt = new Map<string, number>();
  const stored = new Map<string, string[]>();
  const db = {
    now: () => clock.now(),
    quota: {
      signUpsDeferred: () => deferred,
      deferredSince: (_: PeerSession, id: string, since: number) => (refusedAt.get(id) ?? 0) > since,
      signUpRetryMs: () => 1000,
    },
  } as unknown as NodeContext;
  const index = { feed: { retries: async (p: string) => stored.get(p) ?? [], setRetries: async (p: string, ids: string[]) => void stored.set(p, ids) } } as unknown as SyncIndex;
  const refuse = (ids: string[]) => ids.forEach((id) => refusedAt.set(id, ++deferred));
  return { clock, session, retries: new SignUpRetries(db, index), refuse, stored, deferred: () => deferred };
}

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe("sign-up retries", () => {
  it("keep at most MAX_RETRY_IDS a peer; more, and the run holds its checkpoint instead", { timeout: 5000 }, async () => {
    const { session, retries, refuse, stored, deferred } = rig();
    const list = { ids: [] as string[] };
    let since = deferred();
    refuse(ids(MAX_RETRY_IDS - 1, "a"));
    assert.equal(await retries.add(session, list, [...ids(MAX_RETRY_IDS - 1, "a"), "ordinary"], since), true);
    assert.equal(stored.get("peer")!.length, MAX_RETRY_IDS - 1, "written before the checkpoint moves");
    since = deferred();
    refuse(["b0", "b1"]);
    assert.equal(await retries.add(session, list, ["b0", "b1"], since), false, "one past the bound");
    assert.equal(stored.get("peer")!.length, MAX_RETRY_IDS - 1, "nothing added");
  });

  it("a refusal during the page that is none of its sign-ups (a relayed put) holds the checkpoint", { timeout: 5000 }, async () => {
    const { session, retries, refuse, deferred } = rig();
    const since = deferred();
    refuse(["page0", "relayed"]);
    assert.equal(await retries.add(session, { ids: [] }, ["page0", "page1"], since), false);
  });

  it("are fetched again once due; only those refused again stay, with a new wait", { timeout: 5000 }, async () => {
    const { clock, session, retries, refuse, stored, deferred } = rig();
    const list = { ids: [] as string[] };
    const since = deferred();
    refuse(["s0", "s1", "s2"]);
    assert.equal(await retries.add(session, list, ["s0", "s1", "s2"], since), true);
    const fetched: string[][] = [];
    const lacking = async (all: string[]) => all.filter((id) => id !== "s2"); // s2 came by another path meanwhile
    const begin = () => retries.begin(session, lacking, async (wanted) => {
      fetched.push(wanted);
      refuse(wanted.slice(0, 1));
    });
    assert.deepEqual((await begin()).ids, ["s0", "s1", "s2"], "not due before the refill");
    assert.deepEqual(fetched, []);
    clock.advance(1000);
    assert.deepEqual((await begin()).ids, ["s0"], "s0 refused again stays; s1 stored (or gone) and s2 held are dropped");
    assert.deepEqual(fetched, [["s0", "s1"]]);
    assert.deepEqual(stored.get("peer"), ["s0"]);
    assert.deepEqual((await begin()).ids, ["s0"], "waits for the next refill");
    assert.equal(fetched.length, 1);
  });
});
