/**
 * A LevelDB database whose open has not ended (a stalled disk): the
 * store's close() must not wait for it forever, nor must a ToolDb's. Past
 * CLOSE_ENGINE_MS (on the host's clock) close() resolves; what waited for the
 * open (a put submitted before close, `ready`) rejects with CLOSED and never
 * reaches the engine; once the open ends, the database is closed (its
 * directory opens again here: LevelDB's lock is free), unchanged.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClassicLevel } from "classic-level";
import { LevelStore, ToolDb } from "../src/index.js";
import { AbstractLevelStore, CLOSE_ENGINE_MS, type LevelDatabase } from "../src/stores/abstract-level-store.js";
import type { StorageAdapterHost } from "../src/stores/storage-adapter.js";
import { keyStoreName } from "../src/node/options.js";
import { TOOLDB_EVENTS, activeResources, assertNoLeftovers, closesOnClock, outcome, settlesWithin, turns, watchEmits } from "./helpers/lifecycle-probe.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { reopens, scratchStores } from "./helpers/scratch-stores.js";

const storageName = scratchStores("tooldb-stalled-open-");
const MS = 10_000;

/** ClassicLevel's own open (not in its types: abstract-level's hook). */
const levelOpen = (ClassicLevel.prototype as unknown as { _open(options: object): Promise<void> })._open;

/** A real ClassicLevel whose open waits for the test (`release`) before LevelDB opens. */
class StalledLevel extends ClassicLevel<string, string> {
  static engines: StalledLevel[] = [];
  private static reached: Array<() => void> = [];
  private static gate: Promise<void> = Promise.resolve();
  private static opens: () => void = () => undefined;
  /** Opens stall from now on; resolves once one is waiting. */
  static stall(): Promise<void> {
    StalledLevel.gate = new Promise<void>((resolve) => (StalledLevel.opens = resolve));
    return new Promise<void>((resolve) => StalledLevel.reached.push(resolve));
  }
  static release(): void {
    StalledLevel.opens();
  }
  async _open(options: object): Promise<void> {
    StalledLevel.engines.push(this);
    StalledLevel.reached.splice(0).forEach((reach) => reach());
    await StalledLevel.gate;
    return levelOpen.call(this, options);
  }
}

/** LevelStore's store over the stalled engine. */
class StalledOpenStore extends AbstractLevelStore {
  constructor(host?: StorageAdapterHost, storageName?: string) {
    super(host, storageName, (name) => new StalledLevel(name, { keyEncoding: "utf8", valueEncoding: "utf8" }) as unknown as LevelDatabase, "LevelDB");
  }
}

describe("a LevelDB open that has not ended", { timeout: 60_000 }, () => {
  it("store close() resolves after CLOSE_ENGINE_MS; the put before it and ready reject with CLOSED; the database closes once opened, unchanged", async () => {
    const handles = activeResources();
    const clock = new ManualClock();
    const name = storageName();
    const stalled = StalledLevel.stall();
    const store = new StalledOpenStore({ options: { storageName: name, clock } });
    await settlesWithin(stalled, MS, "the engine's open begins");
    const put = outcome(store.put("k", "v"));
    const ready = outcome(store.ready);
    await closesOnClock(clock, store.close(), CLOSE_ENGINE_MS, MS, "store close with an open that has not ended");
    assert.equal(await put, "CLOSED", "a put waiting for the open rejects");
    assert.equal(await ready, "CLOSED");
    assert.equal(await outcome(store.get("k")), "CLOSED");
    const engine = StalledLevel.engines.at(-1)!;
    assert.equal(engine.status, "opening");
    StalledLevel.release();
    await waitUntil(() => engine.status === "closed", MS, "the engine closed once its open ended");
    const again = new LevelStore(undefined, name);
    await settlesWithin(again.ready, MS, "reopening the directory");
    assert.equal(await again.get("k"), undefined, "nothing reached the engine after close");
    await again.close();
    await assertNoLeftovers(handles, "store close during a stalled open");
  });

  it("ToolDb close() resolves after CLOSE_ENGINE_MS on its clock; ready rejects with CLOSED; both databases close once opened; nothing left, no late event", async () => {
    const handles = activeResources();
    const clock = new ManualClock(Date.now());
    const name = storageName();
    const first = StalledLevel.engines.length;
    const stalled = StalledLevel.stall();
    const db = new ToolDb({ topic: "stalled-open", ...FAST, clock, storageAdapter: StalledOpenStore, storageName: name });
    const events = watchEmits(db as never, TOOLDB_EVENTS);
    const ready = outcome(db.ready);
    await settlesWithin(stalled, MS, "the engines' opens begin");
    await waitUntil(() => StalledLevel.engines.length - first >= 2, MS, "both stores' opens stalled");
    await closesOnClock(clock, db.close(), CLOSE_ENGINE_MS, MS, "ToolDb close with stores whose open has not ended");
    events.closed();
    assert.equal(await ready, "CLOSED");
    const engines = StalledLevel.engines.slice(first);
    StalledLevel.release();
    await waitUntil(() => engines.every((e) => e.status === "closed"), MS, "each engine closed once its open ended");
    await reopens([name, keyStoreName(name)], MS);
    await assertNoLeftovers(handles, "ToolDb close during stalled opens");
    await turns(3);
    assert.deepEqual(events.late, [], "no event after close");
  });
});
