/**
 * close() and the user calls, and close() called from where `ready` is heard:
 * - a sign-up, sign-in (keys, anonymous, password) called before close()
 *   is drained like a put: close waits (bounded) for its local write, so the
 *   store holds the whole account record or none, and the keys saved are
 *   those of the user the call reported; past the bound, or called once
 *   close began, it rejects with CLOSED and changes nothing;
 * - close() from a `ready` listener or from `ready.then`: `ready` stays
 *   resolved (it fired), the node ends closed, silent, with nothing left,
 *   and every later call (a DHTServer's start() too) rejects with CLOSED.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DHTServer, startBootstrapNode, type BootstrapNode } from "../src/entries/discovery.js";
import { ErrorCode, LevelStore, MemoryStore, ToolDb, type ToolDbOptions } from "../src/index.js";
import { TOOLDB_EVENTS, activeResources, assertNoLeftovers, settlesWithin, watchEmits, turns, outcome } from "./helpers/lifecycle-probe.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { FAST } from "./helpers/nodes.js";
import { typed } from "./helpers/typed-error.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const unhandled = collectUnhandledRejections();
const MS = 5000;
const TURNS = [0, 1, 3, 8, 20];

let dir: string;
let bootstrapNode: BootstrapNode;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tooldb-close-accounts-"));
  bootstrapNode = await startBootstrapNode({ host: "127.0.0.1", port: 0, timeout: 500 });
});
after(async () => {
  await bootstrapNode.close();
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(unhandled, [], "no unhandled rejection in the whole file");
});

let dirs = 0;
/** Options of a node on a fresh LevelDB directory (reopened with the same options). */
function onDisk(extra: Partial<ToolDbOptions> = {}): Partial<ToolDbOptions> {
  return { topic: "close-accounts", ...FAST, storageAdapter: LevelStore, storageName: join(dir, `db-${dirs++}`), rememberUser: true, ...extra };
}

/** Reopens `options`' store: the account record `==<user>` (undefined if none) and the address of the user whose keys were saved. */
async function reopened(options: Partial<ToolDbOptions>, user: string): Promise<{ record: string | undefined; address: string | undefined }> {
  const again = new ToolDb(options);
  await settlesWithin(again.ready, MS, "reopening the store");
  const record = await again.store.get(`==${user}`);
  const address = again.userAccount.getAddress();
  await again.close();
  return { record, address };
}

describe("a sign-up called right before close()", { timeout: 120_000 }, () => {
  for (const when of TURNS) {
    it(`close at turn ${when} of signUp: close waits for its local write; it resolves and the reopened store holds the whole account`, async () => {
      const options = onDisk();
      const db = new ToolDb(options);
      await db.ready;
      const signedUp = outcome(db.signUp("alice", "password-1"));
      await turns(when);
      await settlesWithin(db.close(), MS, "close");
      assert.equal(await settlesWithin(signedUp, MS, "the sign-up"), "resolved");
      const { record } = await reopened(options, "alice");
      assert.ok(record, "the account record is stored");
      const check = new ToolDb(options);
      await check.ready;
      await check.signIn("alice", "password-1"); // the record is whole: its keys decrypt with the password
      assert.equal(check.userAccount.getUsername(), "alice");
      await check.close();
    });
  }

  it("called once close() began: rejects with CLOSED and stores nothing", async () => {
    const options = onDisk();
    const db = new ToolDb(options);
    await db.ready;
    const closing = db.close();
    await assert.rejects(db.signUp("bob", "password-1"), typed(ErrorCode.CLOSED));
    await settlesWithin(closing, MS, "close");
    assert.equal((await reopened(options, "bob")).record, undefined);
  });

  it("one that never finishes its write (held by a custom verification) does not hold close past the bound: it rejects with CLOSED, nothing stored", async () => {
    const clock = new ManualClock(Date.now());
    const options = onDisk({ clock });
    const db = new ToolDb(options);
    await db.ready;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    db.addCustomVerification("==held", async () => (await gate, true));
    const signedUp = outcome(db.signUp("held", "password-1"));
    await turns(20);
    const closing = db.close();
    await turns(3);
    clock.advance(60_000);
    await settlesWithin(closing, MS, "close with a sign-up that never finishes");
    release();
    assert.equal(await settlesWithin(signedUp, MS, "the held sign-up"), "CLOSED");
    assert.equal((await reopened({ ...options, clock: undefined }, "held")).record, undefined);
  });
});

describe("a sign-in called right before close()", { timeout: 120_000 }, () => {
  /** A user's private key and address, from a node of its own. */
  async function someKeys(): Promise<{ priv: string; address: string }> {
    const other = new ToolDb({ topic: "close-accounts", storageAdapter: MemoryStore });
    await other.ready;
    await other.anonSignIn();
    const { priv } = await other.userAccount.exportKeys();
    const address = other.userAccount.getAddress()!;
    await other.close();
    return { priv, address };
  }

  for (const when of TURNS) {
    it(`keysSignIn and anonSignIn, close at turn ${when}: they resolve and the keys saved are the new user's`, async () => {
      const keys = await someKeys();
      const options = onDisk();
      const db = new ToolDb(options);
      await db.ready;
      const signedIn = outcome(db.keysSignIn(keys.priv, "carol"));
      await turns(when);
      await settlesWithin(db.close(), MS, "close");
      assert.equal(await settlesWithin(signedIn, MS, "keysSignIn"), "resolved");
      assert.equal((await reopened(options, "carol")).address, keys.address, "the signed-in keys were saved");

      const anonOptions = onDisk();
      const anon = new ToolDb(anonOptions);
      await anon.ready;
      const before = anon.userAccount.getAddress();
      const anonymous = outcome(anon.anonSignIn());
      await turns(when);
      await settlesWithin(anon.close(), MS, "close");
      assert.equal(await settlesWithin(anonymous, MS, "anonSignIn"), "resolved");
      const after = anon.userAccount.getAddress();
      assert.notEqual(after, before, "anonSignIn made a new user");
      assert.equal((await reopened(anonOptions, "x")).address, after, "its keys were saved");
    });

    it(`signIn with a password, close at turn ${when}: resolves with the user's keys saved, or rejects with CLOSED (still reading) and changes nothing`, async () => {
      const options = onDisk();
      const db = new ToolDb(options);
      await db.ready;
      await db.signUp("dave", "password-1");
      const before = db.userAccount.getAddress();
      const signedIn = outcome(db.signIn("dave", "password-1"));
      await turns(when);
      await settlesWithin(db.close(), MS, "close");
      const result = await settlesWithin(signedIn, MS, "signIn");
      const saved = (await reopened(options, "dave")).address;
      if (result === "CLOSED") {
        assert.equal(db.userAccount.getAddress(), before, "a sign-in that rejected changed no user");
        assert.equal(saved, before, "nor the saved keys");
      } else {
        assert.equal(result, "resolved");
        assert.notEqual(db.userAccount.getAddress(), before);
        assert.equal(saved, db.userAccount.getAddress(), "the signed-in user's keys were saved");
      }
    });
  }
});

/** Events `db` delivers once `closed()` says close() was called (listening before the caller's close listener). */
function heardAfter(db: ToolDb, closed: () => boolean): string[] {
  const heard: string[] = [];
  for (const event of TOOLDB_EVENTS) db.on(event, () => void (closed() && heard.push(event)));
  return heard;
}

describe("close() called where ready is heard", { timeout: 60_000 }, () => {
  const server: Partial<ToolDbOptions> = { topic: "close-in-ready", server: true, host: "127.0.0.1", port: 0, ...FAST, storageAdapter: MemoryStore };
  for (const where of ["a ready listener", "ready.then"] as const) {
    it(`ToolDb: close() from ${where}: ready stays resolved, the node ends closed, silent, nothing left; calls after reject with CLOSED`, async () => {
      const handles = activeResources();
      const db = new ToolDb(server);
      const events = watchEmits(db as never, TOOLDB_EVENTS);
      let closing: Promise<void> | undefined;
      const heard = heardAfter(db, () => closing !== undefined);
      const close = () => void (closing = db.close());
      if (where === "a ready listener") db.on("ready", close);
      const ready = outcome(where === "ready.then" ? db.ready.then(close) : db.ready);
      assert.equal(await settlesWithin(ready, MS, "ready"), "resolved");
      assert.ok(closing, "close() was called");
      await settlesWithin(closing, MS, "close");
      events.closed();
      assert.equal(db.isClosed, true);
      assert.equal(await outcome(db.ready), "resolved", "ready fired: it stays resolved");
      await assertNoLeftovers(handles, `close from ${where}`);
      await assert.rejects(db.putData("k", 1), typed(ErrorCode.CLOSED));
      await assert.rejects(db.signUp("erin", "password-1"), typed(ErrorCode.CLOSED));
      await assert.rejects(db.getData("k", false, 50), typed(ErrorCode.CLOSED));
      await turns(3);
      assert.deepEqual([...heard, ...events.late], [], "no event after close() was called (not even init)");
    });
  }

  const cases = [
    ["db.close()", "a ready listener"],
    ["db.close()", "ready.then, after start()"],
    ["stop()", "a ready listener"],
    ["stop()", "ready.then, after start()"],
  ] as const;
  for (const [how, where] of cases) {
    it(`DHTServer: ${how} from ${where}: start() settles, stop() resolves, nothing left, no event after; a later start() rejects with CLOSED`, async () => {
      const handles = activeResources();
      const { host, port } = bootstrapNode.address();
      const node = new DHTServer("close-in-ready", "127.0.0.1", 0, {
        bootstrap: [`${host}:${port}`],
        dhtHost: "127.0.0.1",
        discovery: { fastInterval: 50, slowInterval: 2000, jitter: 0, timeout: 500 },
        db: { ...FAST, storageAdapter: MemoryStore },
      });
      const events = watchEmits(node.db as never, TOOLDB_EVENTS);
      let closing: Promise<void> | undefined;
      const heard = heardAfter(node.db, () => closing !== undefined);
      const close = () => void (closing = how === "stop()" ? node.stop() : node.db.close());
      if (where === "a ready listener") node.db.on("ready", close);
      const started = outcome(node.start());
      if (where !== "a ready listener") void node.db.ready.then(close);
      const result = await settlesWithin(started, MS, "start");
      // From a ready listener the close comes before start() got past `ready`: CLOSED; from a later then, it had begun.
      assert.equal(result, where === "a ready listener" ? "CLOSED" : "resolved");
      await settlesWithin(node.db.ready.then(() => closing), MS, "the close");
      events.closed();
      assert.equal(node.db.isClosed, true);
      await assert.rejects(node.start(), typed(ErrorCode.CLOSED), "start() on a node whose ToolDb closed");
      await settlesWithin(node.stop(), MS, "stop");
      await assert.rejects(node.start(), typed(ErrorCode.CLOSED), "start() after stop()");
      await assertNoLeftovers(handles, `${how} from ${where}`);
      await turns(3);
      assert.deepEqual([...heard, ...events.late], [], "no event after close() was called");
    });
  }
});
