/**
 * ToolDb's lifecycle under races, from the outside: close() right after
 * construction, before ready, during a connect, twice at once and again
 * after it resolved; each time close resolves, no event fires after it, no
 * handle is left behind, the store is closed (a LevelDB directory reopens
 * with what was stored) and every call after it rejects with CLOSED.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ErrorCode, LevelStore, MemoryStore, ToolDb, type ToolDbOptions } from "../src/index.js";
import { FAST, portOf, startServer } from "./helpers/nodes.js";
import { typed } from "./helpers/typed-error.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";
import { waitFor } from "./helpers/wait.js";
import { NETWORK_EVENTS, TOOLDB_EVENTS, activeResources, assertNoLeftovers, settlesWithin, watchEmits } from "./helpers/lifecycle-probe.js";

const unhandled = collectUnhandledRejections();
const CLOSE_MS = 5000;
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tooldb-lifecycle-races-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(unhandled, [], "no unhandled rejection in the whole file");
});

/** "turn N": after N event-loop turns, at whatever init stage that is (stores opening, keys loading, listening). */
type When = "at construction" | "before ready" | "after ready" | `turn ${number}`;
const TURNS = [1, 2, 3, 5, 8, 13] as const;

/**
 * Makes a node, closes it `when`, twice at once, then once more after that
 * resolved; checks what every close must leave (no late event, no handle).
 */
async function closeRace(opts: Partial<ToolDbOptions>, when: When): Promise<ToolDb> {
  const handles = activeResources();
  const db = new ToolDb({ topic: "races", ...FAST, ...opts });
  const node = watchEmits(db as never, TOOLDB_EVENTS);
  const net = watchEmits(db.network as never, NETWORK_EVENTS);
  if (when === "before ready") await Promise.resolve(); // init is past its first await, the stores opening
  if (when === "after ready") await settlesWithin(db.ready, CLOSE_MS, "ready");
  if (when.startsWith("turn ")) for (let i = Number(when.slice(5)); i > 0; i--) await new Promise((r) => setImmediate(r));
  const [a, b] = [db.close(), db.close()];
  await settlesWithin(Promise.all([a, b]), CLOSE_MS, `close ${when}`);
  node.closed();
  net.closed();
  await settlesWithin(db.close(), CLOSE_MS, "a third close");
  await settlesWithin(db.ready.catch(() => undefined), CLOSE_MS, "ready after close");
  assert.equal(db.isClosed, true);
  await assertNoLeftovers(handles, `close ${when}`);
  assert.deepEqual(node.late, [], "no ToolDb event after close");
  assert.deepEqual(net.late, [], "no network event after close");
  return db;
}

/** A key pair of a user of another node, for keysSignIn. */
let otherKeys: { priv: string } | undefined;
async function privateKey(): Promise<string> {
  if (otherKeys) return otherKeys.priv;
  const other = new ToolDb({ topic: "races" });
  await other.ready;
  await other.anonSignIn();
  otherKeys = await other.userAccount.exportKeys();
  await other.close();
  return otherKeys.priv;
}

/**
 * Every public call on a closed node rejects with CLOSED: not a TypeError,
 * not a hang, not a success; and none of them changes the signed-in user.
 */
async function assertCallsClosed(db: ToolDb): Promise<void> {
  const closed = typed(ErrorCode.CLOSED);
  const priv = await privateKey();
  const user = db.userAccount.getAddress();
  const calls: Array<[string, () => Promise<unknown>]> = [
    ["putData", () => db.putData("k", 1)],
    ["getData", () => db.getData("k", false, 50)],
    ["subscribeData", () => db.subscribeData("k")],
    ["queryKeys", () => db.queryKeys("k", false, 50)],
    ["anonSignIn", () => db.anonSignIn()],
    ["signUp", () => db.signUp("closed-user", "password-1")],
    ["signIn", () => db.signIn("closed-user", "password-1")],
    ["keysSignIn", () => db.keysSignIn(priv, "closed-user")],
    ["doFunction", () => db.doFunction("f", {}, 50)],
  ];
  for (const [name, call] of calls) {
    let result: unknown;
    try {
      result = await settlesWithin(call(), 2000, `${name} after close`);
    } catch (err) {
      assert.ok(closed(err), name);
      continue;
    }
    assert.fail(`${name} after close resolved (${JSON.stringify(result)}) instead of rejecting with CLOSED`);
  }
  assert.equal(db.userAccount.getAddress(), user, "no call on a closed node changes its signed-in user");
}

describe("ToolDb server (ws, memory store): close races", { timeout: 60_000 }, () => {
  const server: Partial<ToolDbOptions> = { server: true, host: "127.0.0.1", port: 0, storageAdapter: MemoryStore };
  for (const when of ["at construction", "before ready", "after ready", ...TURNS.map((n) => `turn ${n}` as const)] as const) {
    it(`close ${when}: resolves, twice and again, silent, nothing left; calls after it reject with CLOSED`, async () => {
      const db = await closeRace(server, when);
      await assertCallsClosed(db);
    });
  }
});

describe("ToolDb client (ws): close races", { timeout: 60_000 }, () => {
  for (const when of ["at construction", "before ready", "after ready", ...TURNS.map((n) => `turn ${n}` as const)] as const) {
    it(`close ${when}, with a server to dial: resolves, silent, nothing left`, async () => {
      const peerServer = await startServer({ topic: "races" });
      try {
        const db = await closeRace({ peers: [{ host: "127.0.0.1", port: portOf(peerServer) }] }, when);
        await assertCallsClosed(db);
      } finally {
        await peerServer.close();
      }
    });
  }

  it("close during a connect (a dial in flight, the handshake not done): resolves, silent, nothing left; the server sees the link go", async () => {
    const peerServer = await startServer({ topic: "races" });
    try {
      const handles = activeResources();
      const db = new ToolDb({ topic: "races", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(peerServer) }] });
      const node = watchEmits(db as never, TOOLDB_EVENTS);
      await settlesWithin(db.ready, CLOSE_MS, "ready"); // connectTo ran: the dial is in flight, no handshake yet
      assert.equal(db.network.peers.length, 0, "still connecting");
      await settlesWithin(Promise.all([db.close(), db.close()]), CLOSE_MS, "close during a connect");
      node.closed();
      await settlesWithin(db.close(), CLOSE_MS, "a third close");
      await assertNoLeftovers(handles, "close during a connect");
      assert.deepEqual(node.late, []);
      await settlesWithin(
        (async () => {
          while (peerServer.network.peers.length > 0) await waitFor(peerServer, "peer-disconnect", CLOSE_MS);
        })(),
        CLOSE_MS,
        "the server's side of the link to close",
      );
    } finally {
      await peerServer.close();
    }
  });

  it("a put in flight when close() is called settles (resolves or rejects with CLOSED), never hangs", async () => {
    const db = new ToolDb({ topic: "races", ...FAST });
    await db.ready;
    await db.anonSignIn();
    const put = db.putData("during-close", 1).then(
      () => "stored",
      (err: unknown) => (typed(ErrorCode.CLOSED)(err), "closed"),
    );
    await settlesWithin(db.close(), CLOSE_MS, "close with a put in flight");
    assert.match(await settlesWithin(put, CLOSE_MS, "the put in flight"), /stored|closed/);
  });
});

describe("calls in flight when close() is called", { timeout: 60_000 }, () => {
  it("reject with CLOSED at once: not a null, an empty list, a \"Timed out\" or USER_NOT_FOUND after the timeout", async () => {
    const peerServer = await startServer({ topic: "races" });
    peerServer.addServerFunction("never", () => new Promise(() => undefined));
    const db = new ToolDb({ topic: "races", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(peerServer) }] });
    try {
      await settlesWithin(waitFor(db, "connect", CLOSE_MS), CLOSE_MS, "the link");
      // Sent once the server saw all of them: each call is waiting for its replies when close() comes.
      const seen = new Set<string>();
      const allSent = new Promise<void>((resolve) => {
        peerServer.on("message", (m) => {
          seen.add(m.type === "get" ? `get ${(m as { key: string }).key}` : m.type);
          if (["get missing", "get ==nobody", "query", "function"].every((t) => seen.has(t))) resolve();
        });
      });
      const calls: Array<[string, Promise<unknown>]> = [
        ["getData", db.getData("missing", false, 30_000)],
        ["queryKeys", db.queryKeys("missing", false, 30_000)],
        ["doFunction", db.doFunction("never", {}, 30_000)],
        ["signIn", db.signIn("nobody", "password-1")],
      ];
      for (const [, call] of calls) call.catch(() => undefined); // judged below; no unhandled rejection meanwhile
      await settlesWithin(allSent, CLOSE_MS, "every request to reach the server");
      await settlesWithin(db.close(), CLOSE_MS, "close with requests in flight");
      for (const [name, call] of calls) {
        const outcome = await settlesWithin(call.then((v) => ({ resolved: v }), (err: unknown) => ({ err })), 1000, `${name} in flight`);
        assert.ok("err" in outcome, `${name} resolved ${JSON.stringify(outcome)} instead of rejecting with CLOSED`);
        assert.ok(typed(ErrorCode.CLOSED)(outcome.err), name);
      }
    } finally {
      await db.close();
      await peerServer.close();
    }
  });
});

describe("LevelStore: the store is closed by close(), whenever it is called", { timeout: 60_000 }, () => {
  const level = (name: string): Partial<ToolDbOptions> => ({ storageAdapter: LevelStore, storageName: join(dir, name) });

  it("closed at construction: the directory reopens at once", async () => {
    await closeRace(level("at-construction"), "at construction");
    const again = new ToolDb({ topic: "races", ...level("at-construction") });
    await settlesWithin(again.ready, CLOSE_MS, "reopening");
    await again.close();
  });

  it("closed before ready and after a put: the directory reopens and keeps what was stored", async () => {
    const first = new ToolDb({ topic: "races", ...level("kept") });
    await first.ready;
    await first.anonSignIn();
    await first.putData("kept", "yes");
    await first.close();
    const second = await closeRace(level("kept"), "before ready");
    await assertCallsClosed(second);
    const third = new ToolDb({ topic: "races", ...level("kept") });
    await settlesWithin(third.ready, CLOSE_MS, "reopening");
    assert.equal(await third.getData("kept", false, 50), "yes");
    await third.close();
  });

  it("a LevelStore closed while it opens: close resolves, the directory reopens, calls reject with CLOSED", async () => {
    const path = join(dir, "store-direct");
    const store = new LevelStore(undefined, path);
    await settlesWithin(Promise.all([store.close(), store.close()]), CLOSE_MS, "store close while opening");
    await settlesWithin(store.close(), CLOSE_MS, "a third store close");
    await assert.rejects(store.put("k", "v"), typed(ErrorCode.CLOSED));
    await assert.rejects(store.get("k"), typed(ErrorCode.CLOSED));
    const again = new LevelStore(undefined, path);
    await settlesWithin(again.ready, CLOSE_MS, "reopening the store");
    await again.close();
  });
});
