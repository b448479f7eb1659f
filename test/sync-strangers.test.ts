/**
 * Server sync against peers that lie as the *responder* (the victim dials
 * them): an impostor replaying a real server's record with its capabilities,
 * and modified servers whose answers never make progress. Each run must end,
 * never complete on ids it did not get, keep nothing in the impostor's name,
 * and leave the victim's data intact. Checked by frames, runs and records,
 * never by timings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { SyncMessage } from "../src/records/messages.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { askAgain } from "../src/node/sync/id-queue.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { type Impostor, wsImpostor } from "./helpers/impostor.js";
import { linkServers, portOf, waitUntil } from "./helpers/nodes.js";
import { type Frame, RawLink } from "./helpers/raw-peer.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;
const TOPIC = "sync-strangers";
const past = () => Date.now() - 10_000_000;

function nextRun(db: ToolDb): Promise<RangeSyncRun> {
  return new Promise((resolve) => db.sync.range!.once("done", resolve));
}

/** Replaces how `fake` answers one kind of sync request; everything else it answers honestly. */
function lieOn(fake: ToolDb, type: SyncMessage["type"], answer: (message: SyncMessage, from: PeerSession, honest: (m: SyncMessage, f: PeerSession) => void) => void): void {
  const range = fake.sync.range!;
  const honest = range.handle.bind(range);
  range.handle = (message, from) => {
    if (message.type !== type) return honest(message, from);
    answer(message, from, honest);
    return undefined;
  };
}

describe("server sync with lying responders", () => {
  const impostors: Impostor[] = [];
  const fx = attackFixture(TOPIC, 30_000, () => {
    for (const i of impostors.splice(0)) void i.close();
  });
  const server = async (): Promise<ToolDb> => (await fx.server()).db;

  it("an impostor replaying a server's record as a 2.6.6 pong, with its range-sync capabilities, gets no range sync and no checkpoint in that server's name", { timeout: T }, async () => {
    const real = await server();
    const spy = await RawLink.open(portOf(real), { topic: TOPIC });
    const pong = await spy.provenHandshake();
    spy.terminate();
    assert.ok((pong.caps as string[]).includes("rbsr1") && (pong.caps as string[]).includes("chg1"), "the captured pong claims range sync and the change feed");
    const { proof: _proof, nonce: _nonce, ...replayed } = pong;
    const impostor = await wsImpostor((ping: Frame) => ({ ...replayed, id: ping.id }));
    impostors.push(impostor);
    const victim = await server();
    const own = await signedRecords(20, "own/", past());
    await seed(victim, own);
    victim.network.connectTo("127.0.0.1", impostor.port);
    // Unproven, the link is taken for a 2.6.6 server: the victim lists its keys the 2.6.6 way, and nothing else.
    await waitUntil(() => impostor.received.some((f) => f.type === "query"), T, "the 2.6.6 key listing");
    const session = victim.network.session(real.network.getClientAddress());
    assert.equal(session?.provenServer, false);
    assert.deepEqual(impostor.received.filter((f) => String(f.type).startsWith("sync")), [], "no sync request went to the impostor");
    assert.equal(await victim.sync.range!.index.feed.checkpoint(real.nodeAddress()), undefined, "no checkpoint in the real server's name");
    assert.equal((await contents(victim)).size, own.length, "the victim's data is intact");
  });

  for (const [variant, records] of [
    ["one record nobody asked for", 1],
    ["no records", 0],
  ] as const) {
    it(`a responder answering fetches with ${variant} and every id under \`more\` ends the run incomplete instead of keeping it asking or dropping the ids`, { timeout: T }, async () => {
      const fake = await server();
      const victim = await server();
      const theirs = await signedRecords(300, "theirs/", past());
      const own = await signedRecords(30, "own/", past());
      const unasked = await signedRecords(1, "unasked/", past());
      await seed(fake, theirs);
      await seed(victim, own);
      let fetches = 0;
      lieOn(fake, "syncFetch", (message, from) => {
        fetches++;
        const ids = message.type === "syncFetch" ? message.ids : [];
        from.send({ type: "syncRecords", id: message.id, records: unasked.slice(0, records), more: ids });
      });
      const run = nextRun(victim);
      await linkServers(victim, fake, T);
      const ended = await run;
      assert.equal(ended.complete, false);
      assert.match(ended.reason ?? "", /fetch made no progress/);
      assert.ok(fetches < 20, `${fetches} fetches`);
      const held = await contents(victim);
      for (const r of own) assert.equal(held.get(r.k), r.h, "the victim's own records are intact");
      assert.equal(victim.syncProgress.runs.incomplete, 1);
      assert.equal(await victim.sync.range!.index.feed.checkpoint(fake.nodeAddress()), undefined, "no checkpoint moved past records never fetched");
    });
  }

  it("a change feed that says `more` without moving on ends the run instead of pulling for ever", { timeout: T }, async () => {
    const fake = await server();
    const victim = await server();
    await seed(fake, await signedRecords(200, "theirs/", past()));
    const first = nextRun(victim);
    await linkServers(victim, fake, T);
    assert.equal((await first).complete, true, "an honest first run settles both checkpoints");
    victim.network.disconnectFrom("127.0.0.1", portOf(fake));
    await waitUntil(() => victim.network.peers.length === 0 && fake.network.peers.length === 0, T, "the link to drop");
    let pages = 0;
    lieOn(fake, "syncChanges", (message, from, honest) => {
      pages++;
      // The honest answer, then bent: more to come, at the place asked for.
      const send = from.send.bind(from);
      from.send = (m) => {
        if (m.type !== "syncChangesAck" || m.id !== message.id) return send(m);
        from.send = send;
        const at = message.type === "syncChanges" ? (message.s ?? 0) : 0;
        return send({ ...m, ids: [], next: at, head: at + 1_000_000, more: true });
      };
      honest(message, from);
    });
    const second = nextRun(victim);
    await linkServers(victim, fake, T);
    const run = await second;
    assert.equal(run.mode, "changes");
    assert.equal(run.complete, false);
    assert.match(run.reason ?? "", /made no progress/);
    assert.equal(pages, 1, "the repeated place was not asked for again");
  });

  it("askAgain: only ids asked for, each once, and the list must shrink", () => {
    assert.deepEqual(askAgain(["a", "b", "c"], undefined), []);
    assert.deepEqual(askAgain(["a", "b", "c"], []), []);
    assert.deepEqual(askAgain(["a", "b", "c"], ["c", "x", "c"]), ["c"]);
    assert.throws(() => askAgain(["a", "b"], ["b", "a"]), /no progress/);
    assert.throws(() => askAgain(["a", "b"], ["a", "b", "zz"]), /no progress/);
  });
});
