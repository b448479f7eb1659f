/**
 * The catch-up from a tool-db 2.6.6 server (a `query` for its keys, then a
 * `get` per key, in the order it lists them) with a custom verifier whose
 * verdict depends on order: `a-post` is taken only once `b-user` is stored.
 * The 2.6.6 server lists the post first, so its reply is checked before the
 * user's and refused. The catch-up keeps no checkpoint and runs once a link:
 * the post was lost for good. Now the replies a custom verifier refused are
 * checked again once the gets are done (a 2.6.6 peer sends a record once a
 * link, so the copy held is checked; past 64 copies, the key is asked for
 * again after a ping; a sync run keeps its checkpoint before them instead,
 * test/sync-custom-order.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, type ToolDb, type ToolDbRecord } from "../src/index.js";
import { signRecord } from "../src/node/record-signer.js";
import { type Legacy, LOOPBACK, recordRefusals, withNodes } from "./interop/interop-nodes.js";
import { waitUntil } from "./helpers/nodes.js";
import { testAuthor } from "./helpers/signed-records.js";

const T = 30_000;

/** `keys[i]` needs `keys[i + 1]` stored (the last needs nothing), signed at `t`. */
async function chain(keys: string[], t: number): Promise<ToolDbRecord[]> {
  const user = await testAuthor();
  return Promise.all(keys.map((k, i) => signRecord(user, k, { i }, t + i, 0, false)));
}

/** `refuseAlways`: the first key is refused whatever is stored. */
function needs(db: ToolDb, keys: string[], refuseAlways: boolean): void {
  keys.forEach((k, i) => {
    const next = keys[i + 1];
    if (next !== undefined) db.addCustomVerification(k, async () => !(refuseAlways && i === 0) && (await db.records.get(next)) !== undefined);
  });
}

/** The 2.6.6 server lists its keys in the order they were stored: `records` in turn. */
async function holding(legacy: Legacy, records: ToolDbRecord[]): Promise<void> {
  for (const r of records) await legacy.store.put(r.k, JSON.stringify(r));
}

/** Each key but the last needs the last stored (posts listed before their user). */
function allNeedLast(db: ToolDb, keys: string[]): void {
  const last = keys.at(-1)!;
  for (const k of keys.slice(0, -1)) db.addCustomVerification(k, async () => (await db.records.get(last)) !== undefined);
}

type CaughtUp = { stored: string[]; refused: number; progress: { keysListed: number; keysFetched: number; keysChanged: number } };

async function caughtUp(keys: string[], refuseAlways = false, verifiers = (db: ToolDb) => needs(db, keys, refuseAlways)): Promise<CaughtUp> {
  let out!: CaughtUp;
  await withNodes(async (nodes) => {
    const legacyServer = await nodes.legacyNode({ server: true });
    await holding(legacyServer, await chain(keys, Date.now()));
    const ours = await nodes.dhtServer();
    verifiers(ours);
    const refusals = recordRefusals(ours);
    ours.network.connectTo(LOOPBACK, legacyServer.net.port!);
    await waitUntil(() => ours.syncProgress.completed >= 1 && ours.syncProgress.running === 0, 10_000, "the catch-up");
    const stored: string[] = [];
    for (const k of keys) if (await ours.records.get(k)) stored.push(k);
    const { keysListed, keysFetched, keysChanged } = ours.syncProgress;
    out = { stored, refused: refusals.filter((e) => e.code === ErrorCode.CUSTOM_VERIFICATION_FAILED).length, progress: { keysListed, keysFetched, keysChanged } };
  });
  return out;
}

describe("catch-up from a tool-db 2.6.6 server with a custom verifier that depends on order", { timeout: 3 * T }, () => {
  it("a post listed before its user is checked again once the user is stored", { timeout: T }, async () => {
    const { stored, refused } = await caughtUp(["a-post", "b-user"]);
    assert.equal(refused, 1, "the post came before its user");
    assert.deepEqual(stored, ["a-post", "b-user"]);
  });

  it("a chain of three listed dependents first: each check again stores one more, all stored", { timeout: T }, async () => {
    const keys = ["a-post", "b-user", "c-invite"];
    const { stored, refused } = await caughtUp(keys);
    assert.equal(refused, 3, "a and b, then a");
    assert.deepEqual(stored, keys);
  });

  it("a verifier that refuses again is taken at its word: checked twice, then let go", { timeout: T }, async () => {
    const { stored, refused } = await caughtUp(["a-post", "b-user"], true);
    assert.equal(refused, 2);
    assert.deepEqual(stored, ["b-user"]);
  });

  it("100 posts listed before their user: the 36 refused past the 64 copies held are asked for again, all stored", { timeout: T }, async () => {
    const keys = [...Array.from({ length: 100 }, (_, i) => `a-post-${String(i).padStart(3, "0")}`), "z-user"];
    const { stored, refused, progress } = await caughtUp(keys, false, (db) => allNeedLast(db, keys));
    assert.ok(refused >= 100, `every post came before its user (${refused} refusals)`);
    assert.deepEqual(stored, keys, "no post lost (before: the 36 past the 64 held were never stored)");
    // Each key counted once: the 36 asked for again are not fetched twice (before: keysFetched 137 of 101 listed).
    assert.deepEqual(progress, { keysListed: keys.length, keysFetched: keys.length, keysChanged: keys.length });
  });
});
