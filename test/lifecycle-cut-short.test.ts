/**
 * Start-up and writes cut short by close():
 * - `ready` and `start()` reject with CLOSED when close()/stop() comes before
 *   they are done (they resolved, and a caller went on with a closed node),
 *   with no unhandled rejection when nobody awaits them;
 * - closing the ToolDb a DHTServer/DHTClient wraps stops the node's DHT side
 *   too (its discovery ran on, sockets and timers, until stop());
 * - a put called before close() finishes its local write (close waits for it,
 *   bounded) instead of rejecting; a put waiting for server confirmations
 *   rejects with CLOSED at once and leaves no timer;
 * - a StatusHistory sampling a node stops when the node closes (its timer
 *   kept a closed node's process alive).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DHTClient, DHTServer, startBootstrapNode, type BootstrapNode, type DhtNodeOptions } from "../src/entries/discovery.js";
import { ErrorCode, LevelStore, MemoryStore, ToolDb, type ToolDbOptions } from "../src/index.js";
import { TOOLDB_EVENTS, activeResources, assertNoLeftovers, settlesWithin, watchEmits, turns, outcome } from "./helpers/lifecycle-probe.js";
import { StatusHistory } from "../src/metrics/index.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { FAST } from "./helpers/nodes.js";
import { typed } from "./helpers/typed-error.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const unhandled = collectUnhandledRejections();
const MS = 5000;

let bootstrapNode: BootstrapNode;
let dir: string;
before(async () => {
  bootstrapNode = await startBootstrapNode({ host: "127.0.0.1", port: 0, timeout: 500 });
  dir = await mkdtemp(join(tmpdir(), "tooldb-cut-short-"));
});
after(async () => {
  await bootstrapNode.close();
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(unhandled, [], "no unhandled rejection in the whole file");
});

function dhtOptions(): DhtNodeOptions {
  const { host, port } = bootstrapNode.address();
  return {
    bootstrap: [`${host}:${port}`],
    dhtHost: "127.0.0.1",
    discovery: { fastInterval: 50, slowInterval: 2000, jitter: 0, timeout: 500 },
    db: { ...FAST, storageAdapter: MemoryStore },
  };
}

describe("ToolDb: ready cut short by close()", { timeout: 60_000 }, () => {
  const server: Partial<ToolDbOptions> = { server: true, host: "127.0.0.1", port: 0, storageAdapter: MemoryStore };
  for (const when of [0, 1, 2, 3, 5, 8]) {
    it(`close at turn ${when} of start-up: ready rejects with CLOSED if it had not resolved (it resolved, on a closed node)`, async () => {
      const db = new ToolDb({ topic: "cut-short", ...FAST, ...server });
      let settled = false;
      const ready = outcome(db.ready.finally(() => (settled = true)));
      await turns(when);
      const cutShort = !settled;
      await settlesWithin(db.close(), MS, "close");
      assert.equal(await settlesWithin(ready, MS, "ready"), cutShort ? "CLOSED" : "resolved");
    });
  }

  it("nobody awaits ready: close() before it is no unhandled rejection (checked for the file in after())", async () => {
    const db = new ToolDb({ topic: "cut-short", ...FAST, ...server });
    await settlesWithin(db.close(), MS, "close");
    await turns(3);
  });
});

describe("DHTServer/DHTClient: start() cut short by stop()", { timeout: 60_000 }, () => {
  const makers = { DHTServer: () => new DHTServer("cut-short", "127.0.0.1", 0, dhtOptions()), DHTClient: () => new DHTClient("cut-short", dhtOptions()) };
  for (const [name, make] of Object.entries(makers)) {
    for (const when of [0, 1, 3]) {
      it(`${name}: stop at turn ${when} of start(): start() rejects with CLOSED (it resolved, the node stopped)`, async () => {
        const node = make();
        const started = outcome(node.start());
        await turns(when);
        await settlesWithin(node.stop(), MS, "stop");
        assert.equal(await settlesWithin(started, MS, "start"), "CLOSED");
      });
    }
  }

  it("start() not awaited and cut short by stop(): no unhandled rejection (checked for the file in after())", async () => {
    const node = new DHTClient("cut-short", dhtOptions());
    void node.start();
    await settlesWithin(node.stop(), MS, "stop");
    await turns(3);
  });
});

describe("closing the ToolDb a DHTServer wraps closes its DHT side too", { timeout: 60_000 }, () => {
  for (const when of ["after start()", "during start()"] as const) {
    it(`db.close() ${when}: no DHT socket or timer left once it resolves, no hook or event after it; stop() resolves, start() rejects with CLOSED`, async () => {
      const handles = activeResources();
      const node = new DHTServer("cut-short-db", "127.0.0.1", 0, dhtOptions());
      const events = watchEmits(node.db as never, TOOLDB_EVENTS);
      let closed = false;
      const late: string[] = [];
      node.onPeerFound = () => void (closed && late.push("onPeerFound"));
      node.onMechanismFailed = () => void (closed && late.push("onMechanismFailed"));
      const started = outcome(node.start());
      if (when === "after start()") {
        assert.equal(await settlesWithin(started, MS, "start"), "resolved");
        assert.ok(node.discovery, "the mainline DHT runs");
      }
      await settlesWithin(Promise.all([node.db.close(), node.db.close()]), MS, "the ToolDb's close");
      closed = true;
      events.closed();
      await assertNoLeftovers(handles, `db.close() ${when}`);
      if (when === "during start()") assert.equal(await settlesWithin(started, MS, "start"), "CLOSED");
      await settlesWithin(Promise.all([node.stop(), node.stop()]), MS, "stop after the ToolDb closed");
      await assert.rejects(node.start(), typed(ErrorCode.CLOSED));
      await turns(5);
      assert.deepEqual([...late, ...events.late], [], "no hook or event after close");
    });
  }

  it("stop() and db.close() at once, either first: both resolve (no cycle), nothing left", async () => {
    for (const first of ["stop", "close"] as const) {
      const handles = activeResources();
      const node = new DHTClient("cut-short-both", dhtOptions());
      await settlesWithin(node.start(), MS, "start");
      const both = first === "stop" ? [node.stop(), node.db.close()] : [node.db.close(), node.stop()];
      await settlesWithin(Promise.all(both), MS, `${first} first`);
      await assertNoLeftovers(handles, `${first} first`);
    }
  });
});

describe("a put called right before close()", { timeout: 60_000 }, () => {
  it("is not awaited: close waits for its local write, the put resolves and the value is there after reopening", async () => {
    const storageName = join(dir, "put-before-close");
    const level: Partial<ToolDbOptions> = { storageAdapter: LevelStore, storageName };
    const db = new ToolDb({ topic: "cut-short", ...FAST, ...level });
    await db.ready;
    await db.anonSignIn();
    const put = outcome(db.putData("a", 1));
    await settlesWithin(db.close(), MS, "close");
    assert.equal(await settlesWithin(put, MS, "the put"), "resolved");
    await assert.rejects(db.putData("c", 1), typed(ErrorCode.CLOSED), "a put after close() began");
    const again = new ToolDb({ topic: "cut-short", ...FAST, ...level });
    await again.ready;
    assert.equal(await again.getData("a", false, 50), 1, "the put that resolved is stored");
    await again.close();
  });

  /**
   * A signed-in node on a MemoryStore whose put of `key` is held by a custom
   * verification until `release()`; close() is called while it is held.
   */
  async function heldPutAtClose(key: string, extra: Partial<ToolDbOptions> = {}, ack?: number) {
    const db = new ToolDb({ topic: "cut-short", ...FAST, storageAdapter: MemoryStore, ...extra });
    await db.ready;
    await db.anonSignIn();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    db.addCustomVerification(key, async () => (await gate, true));
    const put = outcome(db.putData(key, 1, false, ack ? { ack, timeoutMs: 60_000 } : {}));
    await turns(3);
    const closing = db.close();
    await turns(3);
    return { put, closing, release };
  }

  it("one still running when close() is called (a slow custom verification) finishes before the store closes", async () => {
    const { put, closing, release } = await heldPutAtClose("slow");
    release();
    await settlesWithin(closing, MS, "close");
    assert.equal(await settlesWithin(put, MS, "the put"), "resolved");
  });

  it("close waits a bounded time: a put that never finishes does not hold close(); it then rejects with CLOSED, never resolves", async () => {
    const clock = new ManualClock(Date.now());
    const { put, closing, release } = await heldPutAtClose("stuck", { clock });
    clock.advance(60_000);
    await settlesWithin(closing, MS, "close with a put that never finishes");
    release();
    assert.equal(await settlesWithin(put, MS, "the stuck put"), "CLOSED");
  });

  it("one waiting for server confirmations ({ ack: 1 }) rejects with CLOSED when close() comes, leaving no timer", async () => {
    const handles = activeResources();
    const { put, closing, release } = await heldPutAtClose("acked", {}, 1);
    release(); // the put goes on to wait for confirmations after close() began
    await settlesWithin(closing, MS, "close");
    assert.equal(await settlesWithin(put, MS, "the acknowledged put"), "CLOSED");
    await assertNoLeftovers(handles, "an acknowledged put at close");
  });
});

describe("what samples a ToolDb stops when it closes", { timeout: 30_000 }, () => {
  it("a StatusHistory started on a node: close() leaves no timer; started on a closed node it starts none", async () => {
    const handles = activeResources();
    const db = new ToolDb({ topic: "cut-short", ...FAST, storageAdapter: MemoryStore });
    await db.ready;
    const history = new StatusHistory(db, { intervalMs: 50 });
    history.start();
    await settlesWithin(db.close(), MS, "close");
    await assertNoLeftovers(handles, "a StatusHistory on a closed node");
    const late = new StatusHistory(db, { intervalMs: 50 });
    const made = activeResources(); // its event-loop histogram is made with it, enabled only by start()
    late.start();
    await assertNoLeftovers(made, "a StatusHistory started on a closed node");
    history.stop();
  });
});
