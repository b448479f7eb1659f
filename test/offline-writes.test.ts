import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ErrorCode, ToolDb, isToolDbError, type ToolDbOptions } from "../src/index.js";
import { LevelStore } from "../src/stores/index.js";
import { FAST, closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";
import { BlackholeProxy } from "../faults/proxy.js";

/** Resolves once `server` holds `value` under every key in `keys`. */
function holds(server: ToolDb, keys: string[], value: (key: string) => unknown): () => Promise<boolean> {
  return async () => {
    for (const key of keys) {
      const record = await server.records.get(key);
      if (!record || JSON.stringify(record.v) !== JSON.stringify(value(key))) return false;
    }
    return true;
  };
}

/** A client that keeps dialing a server at `port`, up or not; resolves when ready, not when linked. */
async function clientOf(port: number, opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  const db = new ToolDb({ topic: "test", ...FAST, ...opts, peers: [{ host: "127.0.0.1", port }] });
  await db.ready;
  return db;
}

describe("offline writes reach the mesh", () => {
  const nodes: ToolDb[] = [];
  const dirs: string[] = [];
  const track = <T extends ToolDb>(n: T) => (nodes.push(n), n);
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), "tooldb-offline-"));
    dirs.push(dir);
    return dir;
  };
  after(async () => {
    await closeAll(...nodes);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("hands on writes made while no server was up once a server restarts on its data", async () => {
    const dir = await tempDir();
    const first = track(await startServer({ storageAdapter: LevelStore, storageName: join(dir, "server") }));
    const port = portOf(first);
    const client = track(await startClient([first]));
    await client.putData("before", "linked");
    await waitUntil(holds(first, ["before"], () => "linked"), 3000, "the linked write on the server");

    const lost = waitFor(client, "disconnect", 5000);
    await first.close(); // the only server goes away
    await lost;
    const offline = Array.from({ length: 20 }, (_, i) => `offline-${i}`);
    for (const key of offline) await client.putData(key, `v-${key}`);

    const linked = waitFor(client, "connect", 10_000);
    const restarted = track(await startServer({ storageAdapter: LevelStore, storageName: join(dir, "server"), port }));
    await linked;
    await waitUntil(holds(restarted, ["before", ...offline], (k) => (k === "before" ? "linked" : `v-${k}`)), 5000, "offline writes on the restarted server");
    await waitUntil(() => client.outbox.size === 0, 5000, "the client's outbox to empty");
  });

  it("keeps unconfirmed writes across a client restart (persistent outbox)", async () => {
    const dir = await tempDir();
    const server = track(await startServer());
    const port = portOf(server);
    await server.close();
    // A client whose only server is down writes, then stops.
    const opts = { storageAdapter: LevelStore, storageName: join(dir, "client") };
    const offlineClient = await clientOf(port, opts);
    for (let i = 0; i < 5; i++) await offlineClient.putData(`restart-${i}`, i);
    assert.equal(offlineClient.outbox.size, 5);
    await offlineClient.close();

    const fresh = track(await startServer({ port }));
    const restartedClient = track(await clientOf(port, opts));
    const keys = Array.from({ length: 5 }, (_, i) => `restart-${i}`);
    await waitUntil(holds(fresh, keys, (k) => Number(k.split("-")[1])), 5000, "writes of the previous client run on the server");
    await waitUntil(() => restartedClient.outbox.size === 0, 5000, "the restarted client's outbox to empty");
  });

  it("resolves an acknowledged put once a server confirmed it, and times out with a typed error without one", async () => {
    const server = track(await startServer());
    const client = track(await startClient([server]));
    await client.putData("acked", 1, false, { ack: 1, timeoutMs: 5000 });
    // Confirmed means stored on the server already, not merely sent.
    assert.equal((await server.records.get("acked"))?.v, 1);
    assert.equal(client.outbox.size, 0);

    const lost = waitFor(client, "disconnect", 5000);
    await server.close();
    await lost;
    await assert.rejects(client.putData("unconfirmed", 2, false, { ack: 1, timeoutMs: 100 }), (err) => isToolDbError(err, ErrorCode.ACK_TIMEOUT));
    assert.equal(client.outbox.size, 1, "the timed-out write stays in the outbox");
  });

  it("asks for as many confirmations as requested, each from a different server", async () => {
    const s1 = track(await startServer());
    const s2 = track(await startServer());
    const client = track(await startClient([s1, s2]));
    await client.putData("twice", "x", false, { ack: 2, timeoutMs: 5000 });
    assert.equal((await s1.records.get("twice"))?.v, "x");
    assert.equal((await s2.records.get("twice"))?.v, "x");
    await assert.rejects(client.putData("thrice", "y", false, { ack: 3, timeoutMs: 300 }), (err) => isToolDbError(err, ErrorCode.ACK_TIMEOUT));
  });

  it("rejects with PUT_REFUSED when a server refuses the record; the outbox holds it on a backoff of its own", async () => {
    // The client does no work: its record meets pow 8 by chance with odds 16^-8 (pow 1 let 1 run in 16 through).
    const server = track(await startServer({ pow: 8 }));
    const client = track(await startClient([server]));
    await assert.rejects(client.putData("no-work", 1, false, { ack: 1, timeoutMs: 5000 }), (err) => isToolDbError(err, ErrorCode.PUT_REFUSED) && /NoProofOfWork/.test(err.message));
    assert.deepEqual(client.outbox.pending().map((p) => [p.key, p.held]), [["no-work", true]]);
    assert.equal(await server.records.get("no-work"), undefined);
  });

  it("a refusal by a server's quota is not final: no confirmation, the write stays in the outbox for another server", async () => {
    const full = track(await startServer({ limits: { maxStoreKeys: 1, anonymousKeyShare: 1 } }));
    const client = track(await startClient([full], { outboxRetryInterval: 20 }));
    await client.putData("first", 1, false, { ack: 1, timeoutMs: 5000 });
    const refused = waitFor(full, "refused", 5000, (e) => e.code === ErrorCode.QUOTA_EXCEEDED);
    await assert.rejects(client.putData("second", 2, false, { ack: 1, timeoutMs: 300 }), (err) => isToolDbError(err, ErrorCode.ACK_TIMEOUT));
    await refused;
    assert.equal(client.outbox.size, 1);
    // A server with room takes it from the outbox (at its next re-send: it was sent just now).
    const roomy = track(await startServer());
    // Dialed by hand and listed as trusted: its confirmation lets the write go (src/node/server-trust.ts).
    client.serverTrust.addList((link) => link.port === portOf(roomy));
    client.network.connectTo("127.0.0.1", portOf(roomy));
    await waitUntil(holds(roomy, ["second"], () => 2), 10_000, "the write on a server with room");
    await waitUntil(() => client.outbox.size === 0, 5000, "the outbox to empty");
  });

  it("re-sends a write sent on a link that went silent (black-holed, not closed) once a new link is up", async () => {
    const server = track(await startServer({ heartbeatInterval: 200 }));
    const proxy = new BlackholeProxy(portOf(server));
    try {
      const client = track(await clientOf(await proxy.listen(), { heartbeatInterval: 200, outboxRetryInterval: 100 }));
      await waitFor(client, "connect", 5000);
      const restore = proxy.blackhole(0);
      assert.ok(restore);
      const dropped = waitFor(client, "peer-disconnect", 5000);
      const put = client.putData("held", 1, false, { ack: 1, timeoutMs: 10_000 });
      await dropped; // the heartbeat gave up on the silent link; the put on it never arrived
      assert.equal(await server.records.get("held"), undefined);
      await put; // confirmed over the next link
      assert.equal((await server.records.get("held"))?.v, 1);
      assert.equal(client.outbox.size, 0);
      restore!();
    } finally {
      await proxy.close();
    }
  });

  it("beyond outboxCapacity drops the oldest unconfirmed write (outbox-overflow) and hands on the others", async () => {
    const down = track(await startServer());
    const port = portOf(down);
    await down.close();
    const client = track(await clientOf(port, { outboxCapacity: 3 }));
    const overflowed: string[] = [];
    client.on("outbox-overflow", (key) => overflowed.push(key));
    const keys = ["cap-0", "cap-1", "cap-2", "cap-3", "cap-2", "cap-4"];
    for (const [i, key] of keys.entries()) await client.putData(key, i);
    // cap-2 was written twice: one entry, moved to the newest place.
    assert.deepEqual(overflowed, ["cap-0", "cap-1"]);
    assert.equal(client.outbox.size, 3);

    const server = track(await startServer({ port }));
    const expected: Record<string, number> = { "cap-3": 3, "cap-2": 4, "cap-4": 5 };
    await waitUntil(holds(server, Object.keys(expected), (k) => expected[k]), 5000, "the tracked writes on the server");
    await waitUntil(() => client.outbox.size === 0, 5000, "the outbox to empty");
    assert.equal(await server.records.get("cap-0"), undefined, "a dropped entry is no longer pushed");
  });
});
