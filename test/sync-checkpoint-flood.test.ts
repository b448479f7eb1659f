/**
 * Strangers that prove fresh keys as servers commit change-feed checkpoints
 * at a victim, to push the checkpoint it keeps of an honest server out of its
 * table (MAX_CHECKPOINTS), so that every honest reconnection falls back to
 * full range reconciliation (found by an outside attack check, "E1").
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import { MAX_CHECKPOINTS, MAX_CHECKPOINTS_PER_IP, MAX_CHECKPOINTS_PER_RANGE } from "../src/node/sync/change-feed.js";
import { CHANGES_CAPABILITY } from "../src/node/sync/change-sync.js";
import { RBSR_CAPABILITY, type RangeSyncRun } from "../src/node/sync/range-sync.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { portOf, waitUntil } from "./helpers/nodes.js";
import { RawLink } from "./helpers/raw-peer.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;
const TOPIC = "sync-checkpoint-flood";
const past = () => Date.now() - 10_000_000;

describe("change-feed checkpoints under a flood of strangers' commits", () => {
  const fx = attackFixture(TOPIC, 30_000);

  /** The victim dials `honest`, waits for the run to end, and drops the link. */
  async function runWith(victim: ToolDb, honest: ToolDb): Promise<RangeSyncRun> {
    const done = new Promise<RangeSyncRun>((resolve) => {
      const on = (run: RangeSyncRun) => {
        if (!honest.nodeAddress().endsWith(run.peer) && run.peer !== honest.network.getClientAddress()) return;
        victim.sync.range!.off("done", on);
        resolve(run);
      };
      victim.sync.range!.on("done", on);
    });
    victim.network.connectTo("127.0.0.1", portOf(honest));
    const run = await done;
    victim.network.disconnectFrom("127.0.0.1", portOf(honest));
    await waitUntil(() => !victim.network.peers.some((p) => p.address === honest.nodeAddress()), 10_000, "the link to drop");
    return run;
  }

  /** A fresh proven "server" from `from` asks for the victim's changes (a run begins), then commits a checkpoint. */
  async function commit(victim: ToolDb, from: string, n: number): Promise<boolean> {
    const link = await RawLink.open(portOf(victim), { topic: TOPIC, from });
    try {
      await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
      const changes = link.next((f) => f.id === `ch${n}`, 10_000);
      link.send({ type: "syncChanges", id: `ch${n}`, to: [] });
      await changes;
      const ack = link.next((f) => f.id === `c${n}`, 10_000);
      link.send({ type: "syncCommit", id: `c${n}`, to: [], e: "attacker", s: 1 });
      return !(await ack).error;
    } finally {
      link.terminate();
    }
  }

  async function flood(victim: ToolDb, count: number, from: (i: number) => string, offset = 0): Promise<number> {
    let acked = 0;
    for (let i = 0; i < count; i += 8) {
      const batch = Array.from({ length: Math.min(8, count - i) }, (_, j) => commit(victim, from(i + j), offset + i + j).catch(() => false));
      acked += (await Promise.all(batch)).filter(Boolean).length;
    }
    return acked;
  }

  it("a commit with no run behind it is refused and stores nothing", { timeout: T }, async () => {
    const { db: victim } = await fx.server();
    const index = victim.sync.range!.index;
    await index.open();
    const link = await RawLink.open(portOf(victim), { topic: TOPIC, from: "127.0.0.70" });
    await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
    const ack = link.next((f) => f.id === "c", 10_000);
    link.send({ type: "syncCommit", id: "c", to: [], e: "attacker", s: 1 });
    assert.match(String((await ack).error), /no change-feed run/);
    assert.equal(index.feed.checkpoints, 0);
  });

  it("1,300 fresh identities (200 from one IP, 1,100 from 20 /24s) each begin a run and commit: the honest server's checkpoint survives, its next run goes by the feeds", { timeout: T }, async () => {
    const { db: victim } = await fx.server();
    const { db: honest } = await fx.server();
    const own = await signedRecords(100, "v/", past());
    await seed(victim, own);
    await seed(honest, await signedRecords(200, "h/", past()));
    assert.equal((await runWith(victim, honest)).complete, true);
    assert.equal((await runWith(victim, honest)).mode, "changes", "baseline: a reconnection goes by the feeds");
    const feed = victim.sync.range!.index.feed;
    const started = Date.now();
    const oneIp = await flood(victim, 200, () => "127.0.0.70");
    const afterOneIp = feed.checkpoints;
    console.log(`# one IP: ${oneIp} of 200 commits acked, table holds ${afterOneIp} checkpoints`);
    assert.ok(oneIp >= 100, "the commits were answered (the run's work is not what is tested here)");
    assert.ok(afterOneIp <= 1 + MAX_CHECKPOINTS_PER_IP, `one IP holds ${afterOneIp - 1} checkpoints`);
    const ranges = await flood(victim, 1100, (i) => `127.1.${i % 20}.${10 + (Math.floor(i / 20) % 4)}`, 200);
    console.log(`# 20 ranges: ${ranges} of 1,100 commits acked, table holds ${feed.checkpoints} (max ${MAX_CHECKPOINTS}, ${MAX_CHECKPOINTS_PER_RANGE} a range), ${Date.now() - started} ms in all`);
    assert.ok(ranges >= 1000);
    assert.ok(feed.checkpoints <= MAX_CHECKPOINTS);
    assert.ok(await feed.checkpoint(honest.nodeAddress()), "the victim still holds its checkpoint of the honest server");
    const next = await runWith(victim, honest);
    console.log(`# next run with the honest server: mode=${next.mode} complete=${next.complete} rounds=${next.rounds}`);
    assert.equal(next.mode, "changes");
    assert.equal(next.complete, true);
    await honest.putData("after-flood", 7);
    assert.equal((await runWith(victim, honest)).mode, "changes");
    assert.equal((await victim.records.get("after-flood"))?.v, 7, "a later change arrives by the feed");
    const held = await contents(victim);
    for (const r of own) assert.equal(held.get(r.k), r.h);
  });
});
