/**
 * LevelDB calls in flight that do not end (a stalled disk, an engine bug):
 * a store's close() must not wait for them forever, nor must a ToolDb's.
 * Past CLOSE_ENGINE_MS (on the host's clock) close() resolves; the callers
 * of the calls in flight (a put's batch, a get, a range read) reject with
 * CLOSED, a write queued behind them never reaches the engine, and no write
 * failure is reported; the database is closed once the calls end (its
 * directory opens again here: LevelDB's lock is free) with what was written
 * before intact. A batch cut off this way may still be applied when it ends:
 * CLOSED tells its caller it was not confirmed, not that it was lost.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClassicLevel } from "classic-level";
import { LevelStore, ToolDb } from "../src/index.js";
import { AbstractLevelStore, CLOSE_ENGINE_MS, type LevelDatabase } from "../src/stores/abstract-level-store.js";
import type { StorageAdapterHost } from "../src/stores/storage-adapter.js";
import { CLOSE_WRITES_MS } from "../src/node/closing.js";
import { keyStoreName, syncIndexName } from "../src/node/options.js";
import { TOOLDB_EVENTS, activeResources, assertNoLeftovers, closesOnClock, outcome, settlesWithin, turns, watchEmits } from "./helpers/lifecycle-probe.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { reopens, scratchStores } from "./helpers/scratch-stores.js";

const storageName = scratchStores("tooldb-stalled-calls-");
const MS = 10_000;

/** A gate engine calls pass; while held they wait at it until released. */
class Gate {
  private passage: Promise<void> | undefined;
  private open: () => void = () => undefined;
  private reached: Array<() => void> = [];
  /** Calls wait from now on; resolves once one is waiting. */
  hold(): Promise<void> {
    this.passage = new Promise<void>((resolve) => (this.open = resolve));
    return new Promise<void>((resolve) => this.reached.push(resolve));
  }
  release(): void {
    this.passage = undefined;
    this.open();
  }
  async pass(): Promise<void> {
    if (!this.passage) return;
    this.reached.splice(0).forEach((reach) => reach());
    await this.passage;
  }
}

type Held<T> = T & Record<string, (...args: never[]) => Promise<unknown>>;
/** ClassicLevel's own engine calls (abstract-level's hooks, not in its types). */
const level = ClassicLevel.prototype as unknown as {
  _getMany(keys: string[], options: object): Promise<unknown[]>;
  _chainedBatch(): Held<{ _write(options: object): Promise<void> }>;
  _iterator(options: object): Held<{ _nextv(size: number, options: object): Promise<unknown[]> }>;
  _close(): Promise<void>;
};

/**
 * A real ClassicLevel whose multi-gets, batch writes and iterator reads wait
 * at the test's gates before they reach LevelDB. Its close waits for the
 * multi-gets held, as classic-level's native close waits for its calls in
 * flight (abstract-level's close waits for batches and iterators itself).
 */
class HeldLevel extends ClassicLevel<string, string> {
  static readonly reads = new Gate();
  static readonly writes = new Gate();
  static readonly scans = new Gate();
  static readonly engines: HeldLevel[] = [];
  /** When set, only the engine at this location holds its multi-gets at `reads`. */
  static readsOnly: string | undefined;
  private readonly held = new Set<Promise<unknown>>();

  constructor(name: string) {
    super(name, { keyEncoding: "utf8", valueEncoding: "utf8" });
    HeldLevel.engines.push(this);
  }
  async _getMany(keys: string[], options: object): Promise<unknown[]> {
    const gate = HeldLevel.readsOnly === undefined || HeldLevel.readsOnly === this.location ? HeldLevel.reads.pass() : Promise.resolve();
    const call = gate.then(() => level._getMany.call(this, keys, options));
    this.held.add(call);
    void call.finally(() => this.held.delete(call)).catch(() => undefined);
    return call;
  }
  _chainedBatch(): unknown {
    const batch = level._chainedBatch.call(this);
    const write = batch._write.bind(batch);
    batch._write = (options: object) => HeldLevel.writes.pass().then(() => write(options));
    return batch;
  }
  _iterator(options: object): unknown {
    const iterator = level._iterator.call(this, options);
    const nextv = iterator._nextv.bind(iterator);
    iterator._nextv = (size: number, opts: object) => HeldLevel.scans.pass().then(() => nextv(size, opts));
    return iterator;
  }
  async _close(): Promise<void> {
    await Promise.allSettled([...this.held]);
    return level._close.call(this);
  }
}

/** LevelStore's store over the held engine. */
class HeldStore extends AbstractLevelStore {
  constructor(host?: StorageAdapterHost, storageName?: string) {
    super(host, storageName, (name) => new HeldLevel(name) as unknown as LevelDatabase, "LevelDB");
  }
}

function releaseAll(): void {
  for (const gate of [HeldLevel.reads, HeldLevel.writes, HeldLevel.scans]) gate.release();
}

describe("LevelDB calls in flight that do not end", { timeout: 60_000 }, () => {
  it("store close() resolves after CLOSE_ENGINE_MS; the held batch, get and range read reject with CLOSED, a queued put never reaches LevelDB; the directory reopens with what was written", async () => {
    const handles = activeResources();
    const clock = new ManualClock();
    const name = storageName();
    const store = new HeldStore({ options: { storageName: name, clock } });
    await settlesWithin(store.ready, MS, "the store opens");
    await store.put("before", "kept");
    const engine = HeldLevel.engines.at(-1)!;
    const writing = HeldLevel.writes.hold();
    const reading = HeldLevel.reads.hold();
    const scanning = HeldLevel.scans.hold();
    const put = outcome(store.put("held", "x"));
    const get = outcome(store.get("before"));
    const range = outcome((async () => {
      for await (const page of store.rangePages()) void page;
    })());
    await settlesWithin(Promise.all([writing, reading, scanning]), MS, "the batch, the get and the range read are held");
    const queued = outcome(store.put("queued", "y")); // behind the held batch
    await turns(2);
    const closing = store.close();
    let closed = false;
    void closing.then(() => (closed = true));
    clock.advance(CLOSE_ENGINE_MS - 1);
    await turns(5);
    assert.equal(closed, false, "close waits for the calls in flight up to the bound");
    clock.advance(1);
    await settlesWithin(closing, MS, "store close with LevelDB calls in flight, at the bound");
    assert.deepEqual(await Promise.all([put, get, range, queued]), ["CLOSED", "CLOSED", "CLOSED", "CLOSED"]);
    assert.equal(store.writeFailure, undefined, "a write cut off by close is no write failure");
    assert.equal(await outcome(store.get("before")), "CLOSED");
    assert.equal(engine.status, "closing", "the engine closes once its calls end");
    releaseAll();
    await waitUntil(() => engine.status === "closed", MS, "the engine closed once its calls ended");
    const again = new LevelStore(undefined, name);
    await settlesWithin(again.ready, MS, "reopening the directory");
    assert.equal(await again.get("before"), "kept", "what was written before is intact");
    assert.equal(await again.get("held"), "x", "the held batch was applied when it ended (its caller heard CLOSED: not confirmed)");
    assert.equal(await again.get("queued"), undefined, "nothing reached the engine after the cut");
    await again.close();
    await assertNoLeftovers(handles, "store close with LevelDB calls in flight");
  });

  it("calls that end within CLOSE_ENGINE_MS: close() waits for them and they resolve", async () => {
    const clock = new ManualClock();
    const store = new HeldStore({ options: { storageName: storageName(), clock } });
    await settlesWithin(store.ready, MS, "the store opens");
    const writing = HeldLevel.writes.hold();
    const put = outcome(store.put("k", "v"));
    await settlesWithin(writing, MS, "the batch is held");
    const closing = store.close();
    clock.advance(CLOSE_ENGINE_MS - 1);
    await turns(2);
    releaseAll();
    await settlesWithin(closing, MS, "store close once the batch ended");
    assert.equal(await put, "resolved");
  });

  it("ToolDb close() resolves on its clock (CLOSE_WRITES_MS for the put, then CLOSE_ENGINE_MS for the stores) with a write held in LevelDB; nothing left, no late event; the reopened store keeps what was written", async () => {
    const handles = activeResources();
    const clock = new ManualClock(Date.now());
    const name = storageName();
    const first = HeldLevel.engines.length;
    const db = new ToolDb({ topic: "stalled-calls", ...FAST, clock, storageAdapter: HeldStore, storageName: name });
    await settlesWithin(db.ready, MS, "the node starts");
    await db.anonSignIn();
    await db.putData("kept", "yes");
    const events = watchEmits(db as never, TOOLDB_EVENTS);
    const writing = HeldLevel.writes.hold();
    const put = outcome(db.putData("cut", "no"));
    await settlesWithin(writing, MS, "the put's batch is held");
    const closing = db.close();
    await closesOnClock(clock, closing, Math.min(CLOSE_WRITES_MS, CLOSE_ENGINE_MS), MS, "ToolDb close with a LevelDB batch in flight");
    events.closed();
    assert.equal(await put, "CLOSED");
    const engines = HeldLevel.engines.slice(first);
    releaseAll();
    await waitUntil(() => engines.every((e) => e.status === "closed"), MS, "each engine closed once its calls ended");
    await reopens([name, keyStoreName(name)], MS);
    const again = new ToolDb({ topic: "stalled-calls", ...FAST, storageAdapter: LevelStore, storageName: name });
    await settlesWithin(again.ready, MS, "reopening the node");
    assert.equal(await again.getData("kept", false, 50), "yes");
    await again.close();
    await assertNoLeftovers(handles, "ToolDb close with a LevelDB batch in flight");
    await turns(3);
    assert.deepEqual(events.late, [], "no event after close");
  });
  it("a server's ToolDb close() resolves on its clock with the sync index's clean mark held in LevelDB (a stalled disk at close); the stores reopen", async () => {
    const handles = activeResources();
    const clock = new ManualClock(Date.now());
    const name = storageName();
    const first = HeldLevel.engines.length;
    const db = new ToolDb({ topic: "stalled-sync-index", ...FAST, server: true, host: "127.0.0.1", port: 0, clock, storageAdapter: HeldStore, storageName: name });
    await settlesWithin(db.ready, MS, "the server starts");
    const writing = HeldLevel.writes.hold();
    const closing = db.close();
    await settlesWithin(writing, MS, "the close's writes (the sync index marked clean) are held");
    await closesOnClock(clock, closing, CLOSE_ENGINE_MS, MS, "a server's ToolDb close with the sync index's last write held");
    const engines = HeldLevel.engines.slice(first);
    releaseAll();
    await waitUntil(() => engines.every((e) => e.status === "closed"), MS, "each engine closed once its calls ended");
    await reopens([name, keyStoreName(name), syncIndexName(name)], MS);
    await assertNoLeftovers(handles, "a server's ToolDb close with the sync index's last write held");
  });

  it("a server's ToolDb close() resolves on its clock while its sync index's open is held in LevelDB (a disk that stalls at start-up); the stores reopen", async () => {
    const handles = activeResources();
    const clock = new ManualClock(Date.now());
    const name = storageName();
    const first = HeldLevel.engines.length;
    HeldLevel.readsOnly = syncIndexName(name);
    try {
      const reading = HeldLevel.reads.hold();
      const db = new ToolDb({ topic: "stalled-sync-open", ...FAST, server: true, host: "127.0.0.1", port: 0, clock, storageAdapter: HeldStore, storageName: name });
      const ready = outcome(db.ready);
      await settlesWithin(reading, MS, "the sync index's open reads its mark, held");
      // Before: close waited for the open without limit (on the manual clock, for ever).
      await closesOnClock(clock, db.close(), CLOSE_ENGINE_MS, MS, "a server's ToolDb close with its sync index's open held");
      assert.equal(await ready, "CLOSED");
      const engines = HeldLevel.engines.slice(first);
      releaseAll();
      await waitUntil(() => engines.every((e) => e.status === "closed"), MS, "each engine closed once its calls ended");
      await reopens([name, keyStoreName(name), syncIndexName(name)], MS);
      await assertNoLeftovers(handles, "a server's ToolDb close with its sync index's open held");
    } finally {
      HeldLevel.readsOnly = undefined;
    }
  });
});
