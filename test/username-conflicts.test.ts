/**
 * Username ownership that converges (tool-db 2.6.6's rule, made total): the
 * oldest sign-up of a `==<user>` key wins, the lower address breaks a tie of
 * timestamps, the lower hash a tie of both; a later record never replaces an
 * older one. Local-first sign-up as in 2.6.6, an opt-in acknowledged sign-up,
 * and the conflict events under 2.6.6's names and payloads.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { ErrorCode, EcdsaUser, ToolDb, type ToolDbRecord, incomingWins, isToolDbError, signRecord } from "../src/index.js";
import { closeAll, linkServers, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { waitFor, withTimeout } from "./helpers/wait.js";
import { startLegacyNode } from "./interop/legacy-node.js";

const T = 10_000;
/** Every wait inside is bounded by T; this bounds the test as a whole. */
const TEST_TIMEOUT = 120_000;

async function author(): Promise<EcdsaUser> {
  const user = new EcdsaUser();
  await user.ready;
  return user;
}

async function signUpRecord(user: EcdsaUser, name: string, t: number, tag = "x"): Promise<ToolDbRecord> {
  return signRecord(user, `==${name}`, { name, keys: tag, iv: "iv" }, t, 0, false);
}

/** A TCP link to `port` that can be cut (every connection dropped, new ones refused) and healed. */
async function cuttableLink(port: number): Promise<{ port: number; cut(): void; heal(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let open = true;
  const server = net.createServer((down) => {
    if (!open) return void down.destroy();
    const up = net.connect(port, "127.0.0.1");
    const end = () => {
      for (const s of [down, up]) {
        s.destroy();
        sockets.delete(s);
      }
    };
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("error", end);
      s.on("close", end);
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const drop = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      open = false;
      drop();
    },
    heal() {
      open = true;
    },
    close: async () => {
      drop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe("username ownership", () => {
  it("every arrival order keeps the same record: oldest, then lower address, then lower hash", { timeout: TEST_TIMEOUT }, async () => {
    const [x, y] = await Promise.all([author(), author()]);
    const [low, high] = (x.getAddress()! < y.getAddress()! ? [x, y] : [y, x]) as [EcdsaUser, EcdsaUser];
    const t = 1_700_000_000_000;
    const records = [
      await signUpRecord(high, "alice", t + 5),
      await signUpRecord(high, "alice", t), // same time as the winner, higher address
      await signUpRecord(low, "alice", t), // the winner
      await signUpRecord(low, "alice", t + 1, "later by the same author"),
    ];
    const winner = records[2]!;
    for (const order of permutations(records)) {
      const db = new ToolDb({ topic: "test" });
      try {
        await db.ready;
        for (const record of order) await db.acceptRecord(record);
        assert.equal((await db.records.get("==alice"))?.h, winner.h, `order ${order.map((r) => records.indexOf(r)).join(",")}`);
      } finally {
        await db.close();
      }
    }
    // Same timestamp and author: the lower hash, so even that tie has one answer.
    const [a, b] = [await signUpRecord(low, "bob", t, "a"), await signUpRecord(low, "bob", t, "b")];
    assert.notEqual(incomingWins(a, b), incomingWins(b, a));
  });

  it("sign-up is local-first: it resolves offline; a second one of a stored name is refused with 2.6.6's text", { timeout: TEST_TIMEOUT }, async () => {
    const db = new ToolDb({ topic: "test" });
    try {
      const message = await db.signUp("carol", "pw");
      assert.equal((await db.records.get("==carol"))?.h, (message.data as ToolDbRecord).h);
      await assert.rejects(db.signUp("carol", "other"), (err: unknown) => isToolDbError(err, ErrorCode.USER_EXISTS) && err.message === "User already exists locally!");
      await assert.rejects(db.signIn("nobody", "pw"), (err: unknown) => isToolDbError(err, ErrorCode.USER_NOT_FOUND) && err.message === "Could not find user");
    } finally {
      await db.close();
    }
  });

  it("two servers partitioned while each side registers the same name agree on the oldest after they heal, with 2.6.6's events", { timeout: TEST_TIMEOUT }, async () => {
    const s1 = await startServer();
    const s2 = await startServer();
    const a = await startClient([s1]);
    const b = await startClient([s2]);
    try {
      // Side 1 registers first; side 2 later, and B signs in with it.
      const older = (await a.signUp("alice", "a-password")).data as ToolDbRecord;
      await waitUntil(async () => (await s1.records.get("==alice"))?.h === older.h, T, "alice on side 1");
      await waitUntil(() => Date.now() > older.t, T, "the clock to move on");
      const newer = (await b.signUp("alice", "b-password")).data as ToolDbRecord;
      await waitUntil(async () => (await s2.records.get("==alice"))?.h === newer.h, T, "alice on side 2");
      assert.ok(older.t < newer.t);
      await b.signIn("alice", "b-password");
      assert.equal(b.userAccount.getAddress(), newer.a);
      await b.subscribeData("==alice");

      // Heal: server sync carries each side's record to the other.
      const resolvedOnS2 = waitFor(s2, "username-conflict-resolved", T);
      const resolvedOnB = waitFor(b, "username-conflict-resolved", T);
      const lostOnB = waitFor(b, "current-user-lost-username", T);
      await linkServers(s1, s2);

      const [onS2] = await resolvedOnS2;
      assert.deepEqual(onS2, {
        username: "==alice",
        winner: "remote",
        localTimestamp: newer.t,
        remoteTimestamp: older.t,
        localAddress: newer.a,
        remoteAddress: older.a,
      });
      const [lost] = await lostOnB;
      assert.deepEqual(lost, { username: "alice", timestamp: newer.t, winnerTimestamp: older.t, winnerAddress: older.a });
      assert.equal((await resolvedOnB)[0].winner, "remote");
      for (const db of [s1, s2, a, b]) {
        await waitUntil(async () => (await db.records.get("==alice"))?.h === older.h, T, "the oldest sign-up everywhere");
      }
      // The name now opens A's account only.
      const device = await startClient([s2]);
      try {
        await device.signIn("alice", "a-password");
        assert.equal(device.userAccount.getAddress(), older.a);
        await assert.rejects(device.signIn("alice", "b-password"), (err: unknown) => isToolDbError(err, ErrorCode.WRONG_PASSWORD));
      } finally {
        await device.close();
      }
    } finally {
      await closeAll(a, b, s1, s2);
    }
  });

  it("two linked servers cut apart while each side registers the name converge on the oldest when the link comes back (change feed from their checkpoints)", { timeout: TEST_TIMEOUT }, async () => {
    const s1 = await startServer();
    const s2 = await startServer();
    const link = await cuttableLink(portOf(s2));
    const a = await startClient([s1]);
    const b = await startClient([s2]);
    try {
      s1.network.connectTo("127.0.0.1", link.port);
      await waitUntil(() => s1.network.peers.some((p) => p.address === s2.nodeAddress()), T, "the servers linked");
      await s1.putData("before", 1);
      await waitUntil(async () => (await s2.records.get("before")) !== undefined, T, "a record synced before the cut");
      // The first run (s1 dialed, so s1 runs it) ends with checkpoints on both sides.
      await waitUntil(() => s1.syncProgress.completed > 0, T, "the first reconciliation run done");
      link.cut();
      await waitUntil(() => !s1.network.peers.some((p) => p.address === s2.nodeAddress()), T, "the cut");

      const older = (await a.signUp("yves", "a")).data as ToolDbRecord;
      await waitUntil(() => Date.now() > older.t, T, "the clock to move on");
      const newer = (await b.signUp("yves", "b")).data as ToolDbRecord;
      await waitUntil(async () => (await s1.records.get("==yves"))?.h === older.h && (await s2.records.get("==yves"))?.h === newer.h, T, "each side holds its own");
      const onS2 = waitFor(s2, "username-conflict-resolved", T);
      const byFeed = () => s1.syncProgress.runs.changes + s2.syncProgress.runs.changes;
      const feedRunsBefore = byFeed();
      link.heal();
      assert.deepEqual((await onS2)[0], {
        username: "==yves",
        winner: "remote",
        localTimestamp: newer.t,
        remoteTimestamp: older.t,
        localAddress: newer.a,
        remoteAddress: older.a,
      });
      for (const db of [s1, s2]) await waitUntil(async () => (await db.records.get("==yves"))?.h === older.h, T, "the oldest on both servers");
      await waitUntil(() => byFeed() > feedRunsBefore, 3 * T, "a change-feed run after the heal");
      assert.equal(await b.getData("==yves").then((v) => JSON.stringify(v)), JSON.stringify(older.v), "B's read asks its server and gets the owner");
    } finally {
      await closeAll(a, b, s1, s2);
      await link.close();
    }
  });

  it("a tool-db 2.6.6 node that signs up a name our server already holds ends with our older record, and says so with its own event", { timeout: TEST_TIMEOUT }, async () => {
    const server = await startServer({ legacyRecords: true, topic: `names-${process.pid}` });
    // Our record first, then the 2.6.6 node links: had it been linked, our sign-up could reach its store before
    // its own sign-up, which 2.6.6 then refuses locally ("User already exists locally!") instead of conflicting.
    const owner = (await server.signUp("zed", "first")).data as ToolDbRecord;
    const legacy = await startLegacyNode(`names-${process.pid}`, { peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    try {
      await waitUntil(() => Date.now() > owner.t, T, "the clock to move on");
      const resolved = new Promise<{ winner: string; remoteAddress: string }>((resolve) => legacy.db.on("username-conflict-resolved", resolve));
      const refusedHere = waitFor(server, "username-conflict-resolved", T);
      // 2.6.6's sign-up is local-first too: it stores its (newer) record and broadcasts it; we refuse it and answer with ours.
      await legacy.db.signUp("zed", "second");
      const [here] = await refusedHere;
      assert.equal(here.winner, "local");
      const there = await withTimeout(resolved, T, "2.6.6's username-conflict-resolved");
      assert.deepEqual([there.winner, there.remoteAddress], ["remote", owner.a]);
      await waitUntil(async () => JSON.parse((await legacy.store.get("==zed")) as string).h === owner.h, T, "our record on the 2.6.6 node");
      assert.equal((await server.records.get("==zed"))?.h, owner.h);
      // Its own conflict check (a get 500 ms after the sign-up) has its answer: nothing is left running.
      await withTimeout(new Promise<void>((resolve) => legacy.db.on("signup-conflict-detected", () => resolve())), T, "2.6.6's conflict check");
    } finally {
      await legacy.close();
      await server.close();
    }
  });

  it("a sign-up a server refuses is reported: signup-conflict-detected by default, a USER_EXISTS rejection with { ack }", { timeout: TEST_TIMEOUT }, async () => {
    const server = await startServer();
    const first = await startClient([server]);
    const late = await startClient([server]);
    try {
      const owner = (await first.signUp("dave", "pw")).data as ToolDbRecord;
      await waitUntil(async () => (await server.records.get("==dave"))?.h === owner.h, T, "dave on the server");
      await waitUntil(() => Date.now() > owner.t, T, "the clock to move on");

      // Default (2.6.6): resolves locally, then says so when the server refuses and sends the owner's record.
      const detected = waitFor(late, "signup-conflict-detected", T);
      const refused = waitFor(late, "put-refused", T);
      const resolved = waitFor(late, "username-conflict-resolved", T);
      const mine = (await late.signUp("dave", "other")).data as ToolDbRecord;
      const [event] = await detected;
      assert.equal(event.username, "dave");
      assert.equal(event.localTimestamp, mine.t);
      assert.match(event.error, /Username conflict/);
      assert.equal((await refused)[0].h, mine.h);
      assert.equal((await resolved)[0].winner, "remote");
      await waitUntil(async () => (await late.records.get("==dave"))?.h === owner.h, T, "the owner's record replaces ours");

      // Acknowledged: rejects once the server refuses.
      const third = await startClient([server]);
      try {
        await assert.rejects(third.signUp("dave", "x", { ack: 1, timeoutMs: T }), (err: unknown) => isToolDbError(err, ErrorCode.USER_EXISTS));
        const fine = await third.signUp("erin", "x", { ack: 1, timeoutMs: T });
        assert.equal((await server.records.get("==erin"))?.h, (fine.data as ToolDbRecord).h, "resolved once the server stored it");
      } finally {
        await third.close();
      }
      assert.equal((await server.records.get("==dave"))?.h, owner.h, "a later sign-up never overwrites the older one");
    } finally {
      await closeAll(first, late, server);
    }
  });
});
