/**
 * A start-up that stalls after its stores are ready: a key store read of
 * the node's peer keys that never answers, a listen that has not ended.
 * close() must not wait for either: `ready` rejects with CLOSED, close()
 * resolves (a listen still running is waited for CLOSE_START_MS at most, on
 * the node's clock), nothing is left open (a socket the late listen opens
 * after close is closed once it does), and no event comes after close.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LevelStore, ToolDb } from "../src/index.js";
import { TcpNetwork } from "../src/network/tcp-network.js";
import { WebSocketNetwork } from "../src/network/websocket-network.js";
import type { CompositeNetwork } from "../src/network/composite-network.js";
import { CLOSE_START_MS } from "../src/network/start-release.js";
import { PEER_KEYS } from "../src/node/node-keys.js";
import { keyStoreName } from "../src/node/options.js";
import { TOOLDB_EVENTS, activeResources, assertNoLeftovers, outcome, settlesWithin, turns, watchEmits } from "./helpers/lifecycle-probe.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { reopens, scratchStores } from "./helpers/scratch-stores.js";

const storageName = scratchStores("tooldb-stall-later-");
const MS = 10_000;

/** A gate the test opens; `reached` resolves when something first waits on it. */
function gate(): { wait(): Promise<void>; reached: Promise<void>; open(): void } {
  let open!: () => void;
  let reach!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (reach = resolve));
  return { wait: () => (reach(), opened), reached, open };
}

/** A real LevelStore whose read of the node's peer keys never answers (the engine underneath is fine). */
class StalledKeyRead extends LevelStore {
  static readonly asked = gate();
  override get(key: string): Promise<string | undefined> {
    if (key !== PEER_KEYS) return super.get(key);
    void StalledKeyRead.asked.wait();
    return new Promise<string | undefined>(() => undefined);
  }
}

/** A real TCP transport whose listen waits for the test before it listens. */
class GatedTcp extends TcpNetwork {
  static listening = gate();
  static made: GatedTcp | undefined;
  protected override async listen(): Promise<void> {
    GatedTcp.made = this;
    await GatedTcp.listening.wait();
    return super.listen();
  }
}

describe("a start-up stalled after its stores", { timeout: 60_000 }, () => {
  it("a key store read that never answers: close() resolves, ready rejects with CLOSED, the stores are released, nothing left, no late event", async () => {
    const handles = activeResources();
    const name = storageName();
    const db = new ToolDb({ topic: "stall-later", ...FAST, storageAdapter: StalledKeyRead, storageName: name });
    const events = watchEmits(db as never, TOOLDB_EVENTS);
    const ready = outcome(db.ready);
    await settlesWithin(StalledKeyRead.asked.reached, MS, "the start-up reads its peer keys");
    await turns(3);
    await settlesWithin(db.close(), MS, "close with a key read that never answers");
    events.closed();
    assert.equal(await ready, "CLOSED");
    assert.equal(db.network.isClosed, true, "the network never started and is closed");
    await reopens([name, keyStoreName(name)], MS);
    await assertNoLeftovers(handles, "close during a stalled key read");
    await turns(3);
    assert.deepEqual(events.late, [], "no event after close");
  });

  it("a listen that has not ended: close() resolves after CLOSE_START_MS on the node's clock, ready rejects with CLOSED; the socket the late listen opens is closed", async () => {
    const handles = activeResources();
    const clock = new ManualClock(Date.now());
    const name = storageName();
    const db = new ToolDb({ topic: "stall-later", ...FAST, server: true, host: "127.0.0.1", port: 0, networkAdapter: GatedTcp, clock, storageName: name });
    const events = watchEmits(db as never, TOOLDB_EVENTS);
    const order: string[] = [];
    const ready = outcome(db.ready).then((result) => (order.push(`ready ${result}`), result));
    await settlesWithin(GatedTcp.listening.reached, MS, "the start-up begins to listen");
    let closed = false;
    const closing = db.close().then(() => void ((closed = true), order.push("close")));
    // close() waits for the listen up to CLOSE_START_MS on the node's clock, then leaves its release to the listen's end.
    for (let i = 0; i < 100 && !closed; i++) {
      await turns(2);
      clock.advance(CLOSE_START_MS);
    }
    await settlesWithin(closing, MS, "close with a listen that has not ended");
    events.closed();
    assert.deepEqual(order, ["ready CLOSED", "close"], "ready rejected with CLOSED before close() resolved");
    await reopens([name, keyStoreName(name)], MS);
    // The listen ends now, after close: the socket it opens is closed once it does.
    const transport = GatedTcp.made!;
    GatedTcp.listening.open();
    await waitUntil(() => transport.port !== undefined, MS, "the late listen bound its socket");
    await assertNoLeftovers(handles, "close during a listen that ended after it");
    assert.ok(transport.isClosed);
    await turns(3);
    assert.deepEqual(events.late, [], "no event after close");
  });

  it("a listen that has not ended beside one that has (networkAdapter [WebSocketNetwork, GatedTcp]): the WebSocket server is closed when close() resolves", async () => {
    const handles = activeResources();
    const clock = new ManualClock(Date.now());
    const name = storageName();
    GatedTcp.listening = gate();
    const db = new ToolDb({ topic: "stall-later", ...FAST, server: true, host: "127.0.0.1", port: 0, networkAdapter: [WebSocketNetwork, GatedTcp], clock, storageName: name });
    const events = watchEmits(db as never, TOOLDB_EVENTS);
    const ready = outcome(db.ready);
    await settlesWithin(GatedTcp.listening.reached, MS, "the start-up begins to listen");
    const ws = (db.network as CompositeNetwork).transport(WebSocketNetwork)!;
    await waitUntil(() => ws.port !== undefined, MS, "the WebSocket transport listens");
    let closed = false;
    const closing = db.close().then(() => void (closed = true));
    for (let i = 0; i < 100 && !closed; i++) {
      await turns(2);
      clock.advance(CLOSE_START_MS);
    }
    await settlesWithin(closing, MS, "close with one listen that has not ended");
    events.closed();
    assert.equal(await ready, "CLOSED");
    await reopens([name, keyStoreName(name)], MS);
    await assertNoLeftovers(handles, "close with one transport's listen still running (the WebSocket server)");
    GatedTcp.listening.open();
    await waitUntil(() => GatedTcp.made!.port !== undefined, MS, "the late listen bound its socket");
    await assertNoLeftovers(handles, "close during a listen that ended after it (composite)");
    await turns(3);
    assert.deepEqual(events.late, [], "no event after close");
  });
});
