/**
 * A start-up that never finishes: a LevelDB store whose `ready` never
 * resolves (the database underneath opens; the store never says so). A
 * ToolDb waits for its stores before it is ready, and a DHTServer's or
 * DHTClient's start() waits for the ToolDb; close() and stop() must not.
 * close()/stop() abandon the start-up: `ready` and start() reject with
 * CLOSED, close()/stop() resolve, the LevelDB directories are released (they
 * open again in this process: LevelDB's lock is free), no handle is left, no
 * event comes after, a later start() rejects with CLOSED, and the merit
 * list the previous run saved is not overwritten by a run that never took it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DHTClient, DHTServer } from "../src/entries/discovery.js";
import type { DhtNode } from "../src/platform/dht-node.js";
import { ErrorCode, LevelStore, ToolDb } from "../src/index.js";
import type { StorageAdapterHost } from "../src/stores/storage-adapter.js";
import { keyStoreName } from "../src/node/options.js";
import { MERIT_RECORDS_KEY } from "../src/node/merit-records.js";
import { TOOLDB_EVENTS, activeResources, assertNoLeftovers, outcome, settlesWithin, turns, watchEmits } from "./helpers/lifecycle-probe.js";
import { FAST } from "./helpers/nodes.js";
import { typed } from "./helpers/typed-error.js";
import { scratchStores } from "./helpers/scratch-stores.js";

const MS = 10_000;
/** A fresh LevelDB directory in the file's temporary folder (removed after it; no rejection may go unhandled). */
const storageName = scratchStores("tooldb-stuck-start-");

/** A real LevelStore whose `ready` never resolves; `underneath` resolves once the LevelDB underneath is open. */
class NeverReadyStore extends LevelStore {
  static made: NeverReadyStore[] = [];
  readonly underneath: Promise<void>;
  constructor(host?: StorageAdapterHost, storageName?: string) {
    super(host, storageName);
    this.underneath = super.ready;
    NeverReadyStore.made.push(this);
  }
  override get ready(): Promise<void> {
    return new Promise<void>(() => undefined);
  }
}


/** Every store made by the stuck node: its LevelDB open underneath, so the start-up is waiting on `ready` alone. */
async function stuckOnStores(): Promise<string[]> {
  const stores = NeverReadyStore.made.splice(0);
  assert.ok(stores.length >= 2, "the node made its stores");
  await Promise.all(stores.map((s) => s.underneath));
  await turns(5);
  return stores.map((s) => s.storageName);
}

/** Each directory opens again here: whoever had it open closed it (LevelDB holds a lock per process). */
async function released(names: string[]): Promise<void> {
  for (const name of names) {
    const again = new LevelStore(undefined, name);
    await settlesWithin(again.ready, MS, `reopening ${name}`);
    await again.close();
  }
}

describe("a start-up whose store never becomes ready", { timeout: 60_000 }, () => {
  it("ToolDb: close() resolves, ready rejects with CLOSED, the stores are released, the merit list a run saved stays, nothing left", async () => {
    const handles = activeResources();
    const name = storageName();
    const saved = JSON.stringify(["a".repeat(64)]);
    const keys = new LevelStore(undefined, keyStoreName(name));
    await keys.put(MERIT_RECORDS_KEY, saved);
    await keys.close();
    const db = new ToolDb({ topic: "stuck-start", ...FAST, storageAdapter: NeverReadyStore, storageName: name });
    const events = watchEmits(db as never, TOOLDB_EVENTS);
    const ready = outcome(db.ready);
    const names = await stuckOnStores();
    await settlesWithin(db.close(), MS, "close with a store that never becomes ready");
    events.closed();
    assert.equal(await ready, "CLOSED");
    await released(names);
    const again = new LevelStore(undefined, keyStoreName(name));
    assert.equal(await again.get(MERIT_RECORDS_KEY), saved, "a start-up cut short before it took the merit list leaves it for the next run");
    await again.close();
    await assertNoLeftovers(handles, "ToolDb close during a stuck start-up");
    await turns(3);
    assert.deepEqual(events.late, [], "no event after close");
  });

  const kinds = [
    ["DHTClient", () => new DHTClient("stuck-start", { bootstrap: ["127.0.0.1:9"], db: { ...FAST, storageAdapter: NeverReadyStore, storageName: storageName() } })],
    ["DHTServer", () => new DHTServer("stuck-start", "127.0.0.1", 0, { bootstrap: ["127.0.0.1:9"], dhtHost: "127.0.0.1", db: { ...FAST, storageAdapter: NeverReadyStore, storageName: storageName() } })],
  ] as const;
  for (const [kind, make] of kinds) {
    it(`${kind}: stop() during start() resolves; start() rejects with CLOSED; the stores are released, nothing left; a later start() rejects with CLOSED`, async () => {
      const handles = activeResources();
      const node: DhtNode = make();
      const events = watchEmits(node.db as never, TOOLDB_EVENTS);
      const order: string[] = [];
      const started = outcome(node.start()).then((result) => (order.push(`start ${result}`), result));
      const names = await stuckOnStores();
      const stopped = node.stop().then(() => void order.push("stop"));
      await settlesWithin(stopped, MS, `${kind} stop() with a start() stuck on its store`);
      events.closed();
      assert.deepEqual(order, ["start CLOSED", "stop"], "start() rejected with CLOSED before stop() resolved");
      assert.equal(await started, "CLOSED");
      assert.equal(node.db.isClosed, true);
      assert.equal(node.peering, undefined, "start() opened no DHT side");
      await assert.rejects(node.start(), typed(ErrorCode.CLOSED), "start() after stop()");
      await settlesWithin(node.stop(), MS, "stop() again");
      await released(names);
      await assertNoLeftovers(handles, `${kind} stop during a stuck start`);
      await turns(3);
      assert.deepEqual(events.late, [], "no event after stop");
    });
  }
});
