/**
 * When the outbox sends what (src/node/outbox-delivery.ts): a write goes out
 * as soon as a link to a server exists, whatever happened to it before; a
 * write a server refuses waits on its own and holds back nothing; `ack: n`
 * keeps a write until n distinct servers confirmed it.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, ToolDb, isToolDbError, type ToolDbOptions } from "../src/index.js";
import type { PutRefusal } from "../src/node/acks.js";
import { FAST, closeAll, portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { waitFor } from "./helpers/wait.js";
import { BlackholeProxy } from "../faults/proxy.js";

/** A client that keeps dialing `ports`, up or not; resolves when ready, not when linked. */
async function clientOf(ports: number[], opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  const db = new ToolDb({ topic: "test", ...FAST, ...opts, peers: ports.map((port) => ({ host: "127.0.0.1", port })) });
  await db.ready;
  return db;
}

describe("outbox delivery", () => {
  const nodes: ToolDb[] = [];
  const proxies: BlackholeProxy[] = [];
  const track = <T extends ToolDb>(n: T) => (nodes.push(n), n);
  after(async () => {
    await closeAll(...nodes);
    await Promise.all(proxies.map((p) => p.close()));
  });

  for (const step of [0, -3_600_000]) {
    it(`sends an entry re-sent many times on a silent link at once on a new link, whatever its tries${step ? "; the wall clock stepped back an hour after the put" : ""}`, { timeout: 30_000 }, async () => {
      const silent = track(await startServer());
      const proxy = new BlackholeProxy(portOf(silent));
      proxies.push(proxy);
      // Only the client's clock is manual: its re-sends happen when the test moves it, and a new link must not need it to move.
      const clock = new ManualClock(Date.now());
      const client = track(await clientOf([await proxy.listen()], { clock, heartbeatInterval: 0, outboxRetryInterval: 10 }));
      await waitUntil(() => client.network.peers.length === 1, 5000, "the link through the proxy");
      assert.ok(proxy.blackhole(0), "the link is black-holed: alive for the client, silent");
      await client.putData("many-tries", 1);
      const tries = () => client.outbox.pending()[0]?.tries ?? 0;
      assert.equal(tries(), 1);
      clock.stepWall(step); // the re-sends are paced on the monotonic clock (before, none for an hour)
      while (tries() < 10) {
        const before = tries();
        clock.advance(640); // the longest re-send delay (10 ms × 64)
        await waitUntil(() => tries() > before, 5000, `re-send ${before + 1} on the silent link`);
      }
      // Stepped, the client's wall clock is an hour behind the servers': their records look an hour ahead, and it links to none.
      if (step) return;
      const fresh = track(await startServer());
      // Dialed by hand and listed as trusted: its confirmation lets the write go (src/node/server-trust.ts).
      client.serverTrust.addList((link) => link.port === portOf(fresh));
      client.network.connectTo("127.0.0.1", portOf(fresh));
      await waitUntil(async () => (await fresh.records.get("many-tries"))?.v === 1, 5000, "the write on the new server without the clock moving");
      await waitUntil(() => client.outbox.size === 0, 5000, "the new server's confirmation");
    });
  }

  it("a poison write refused by every server waits on its own backoff and does not delay the writes behind it", { timeout: 30_000 }, async () => {
    // Servers that drop a link carrying a frame over 16 KiB and refuse keys starting with "refused-".
    const serverOpts: Partial<ToolDbOptions> = { maxMessageBytes: 16 * 1024 };
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const probe = await startServer(serverOpts);
      ports.push(portOf(probe));
      await probe.close();
    }
    // A re-send delay far beyond the test's waits: a write held back behind the poison would time out here.
    const client = track(await clientOf(ports, { outboxRetryInterval: 600_000 }));
    const refusals: PutRefusal[] = [];
    client.on("put-refused", (e) => refusals.push(e));
    await client.putData("too-large", "x".repeat(32 * 1024));
    await client.putData("refused-1", 1);
    const behind = Array.from({ length: 20 }, (_, i) => `behind-${i}`);
    for (const key of behind) await client.putData(key, key);
    assert.equal(client.outbox.size, 22);

    const servers: ToolDb[] = [];
    for (const port of ports) {
      const server = track(await startServer({ ...serverOpts, port }));
      server.addCustomVerification("refused-", () => false);
      servers.push(server);
    }
    // Confirmed by a server each (the servers are not linked: the one that confirms first holds it).
    await waitUntil(() => client.outbox.size === 2, 10_000, "only the two poison writes left");
    for (const key of behind) {
      const held = await Promise.all(servers.map((server) => server.records.get(key)));
      assert.ok(held.some((r) => r?.v === key), `${key} on a server`);
    }
    for (const server of servers) {
      assert.equal(await server.records.get("too-large"), undefined);
      assert.equal(await server.records.get("refused-1"), undefined);
    }
    const pending = client.outbox.pending();
    assert.deepEqual(pending.map((p) => p.key).sort(), ["refused-1", "too-large"]);
    assert.ok(pending.every((p) => p.held && p.refusals >= 1), "both wait on a backoff of their own");
    const hashOf = new Map(pending.map((p) => [p.key, p.h]));
    const refused = (key: string) => refusals.filter((e) => e.h === hashOf.get(key));
    assert.ok(refused("too-large").length >= 1, "the write that made servers drop the link is reported");
    assert.ok(refused("refused-1").length >= 1, "the refused write is reported");
    assert.match(refused("refused-1")[0]!.reason, /custom verification/);
  });

  it("ack: 2 waits for two distinct servers, and the outbox keeps the write until the second one has it", { timeout: 30_000 }, async () => {
    const first = track(await startServer());
    const second = track(await startServer());
    const client = track(await clientOf([portOf(first)]));
    await waitUntil(() => client.network.peers.length === 1, 5000, "the first link");
    const confirmed = waitFor(client, "put-confirmed", 5000);
    let settled = false;
    const put = client.putData("twice", "x", false, { ack: 2, timeoutMs: 20_000 }).finally(() => (settled = true));
    const [{ server }] = await confirmed;
    assert.equal(server, client.network.peers[0]!.clientId);
    // The first server's second answer (a re-send) must not count as another server.
    client.network.peers[0]!.send({ type: "put", id: "again", data: (await client.records.get("twice"))!, ack: true });
    await waitFor(client, "put-confirmed", 5000);
    assert.equal(settled, false, "one server confirmed (twice): the put still waits");
    assert.deepEqual(client.outbox.pending().map((p) => [p.key, p.need, p.confirmedBy.length]), [["twice", 2, 1]]);
    client.network.connectTo("127.0.0.1", portOf(second));
    await put;
    assert.equal((await second.records.get("twice"))?.v, "x");
    await waitUntil(() => client.outbox.size === 0, 5000, "the outbox to let the write go");
  });

  it("a put refused by a server rejects with PUT_REFUSED, is reported, and stays in the outbox for a server that takes it", { timeout: 30_000 }, async () => {
    const strict = track(await startServer());
    strict.addCustomVerification("picky-", () => false);
    const client = track(await clientOf([portOf(strict)], { outboxRetryInterval: 50 }));
    await waitUntil(() => client.network.peers.length === 1, 5000, "the link");
    const reported = waitFor(client, "put-refused", 5000, (e) => /custom verification/.test(e.reason));
    await assert.rejects(client.putData("picky-1", 1, false, { ack: 1, timeoutMs: 5000 }), (err) => isToolDbError(err, ErrorCode.PUT_REFUSED));
    await reported;
    assert.equal(client.outbox.size, 1);
    const lenient = track(await startServer());
    client.serverTrust.addList((link) => link.port === portOf(lenient)); // dialed by hand, listed as trusted
    client.network.connectTo("127.0.0.1", portOf(lenient));
    await waitUntil(async () => (await lenient.records.get("picky-1"))?.v === 1, 10_000, "the write on a server that takes it, after its backoff");
    await waitUntil(() => client.outbox.size === 0, 5000, "the outbox to empty");
  });
});
