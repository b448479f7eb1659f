/**
 * A linked server that passed the handshake and then leaves the client's
 * requests unanswered (found by an outside check against pages): the client
 * drops it as unresponsive (close code 4012, a `refused` event UNRESPONSIVE)
 * and its writes reach an honest server it also knows; the dropped one is
 * not redialed at once. An honest server that confirms slowly is kept.
 * Real sockets on loopback; small injected timeouts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb } from "../src/index.js";
import type { RefusalEvent } from "../src/network/network-host.js";
import { CloseCode } from "../src/network/connection.js";
import { ErrorCode } from "../src/base/errors.js";
import { ServerSelection } from "../src/peering/server-selection.js";
import { DhtPeering, type PeerSource } from "../src/peering/dht-peering.js";
import type { PeerAddress } from "../src/discovery/peer-table.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { HostileServer } from "./helpers/hostile-server.js";
import { teardownEach } from "./helpers/teardown.js";

const TOPIC = "unresponsive";
/** The client's judgement bound in these tests: 4 re-send intervals, as the default (20 s) is. */
const SILENCE_MS = 2000;
/** The first wait before a dropped server is dialed again (`unresponsivePenalty`, DhtPeering's `penaltyMs`; 5 s by default). */
const PENALTY_MS = 3000;
const WRITES = 20;

type Behaviour = "silent" | "no-putack" | "slow-putack";

describe("servers that leave a client's requests unanswered", () => {
  const { nodes, stops, closers: hostiles } = teardownEach();

  async function honestServer(): Promise<ToolDb> {
    const db = new ToolDb({ server: true, host: "127.0.0.3", port: 0, topic: TOPIC, ...FAST });
    await db.ready;
    nodes.push(db);
    return db;
  }

  async function hostile(behaviour: Behaviour, delayMs = 0): Promise<HostileServer> {
    const h = await HostileServer.start(TOPIC, "127.0.0.10");
    hostiles.push(h);
    if (behaviour === "silent") h.silent = true;
    h.onFrame = (link, f) => {
      if (f.type === "query") link.send({ type: "queryAck", id: f.id, to: [], keys: [] });
      const h = (f.data as { h?: string } | undefined)?.h;
      if (behaviour === "slow-putack" && f.type === "put" && f.ack === true && typeof h === "string") {
        setTimeout(() => link.send({ type: "putAck", id: `a${f.id as string}`.slice(0, 60), to: [], stored: [h] }), delayMs);
      }
    };
    return h;
  }

  async function client(opts: Partial<ToolDb["options"]> = {}): Promise<{ db: ToolDb; refusals: RefusalEvent[]; closes: number[] }> {
    const db = new ToolDb({ topic: TOPIC, ...FAST, storageName: `unresponsive-${Math.random()}`, outboxRetryInterval: 500, unresponsiveTimeout: SILENCE_MS, unresponsivePenalty: PENALTY_MS, ...opts });
    await db.ready;
    nodes.push(db);
    const refusals: RefusalEvent[] = [];
    const closes: number[] = [];
    db.on("refused", (e) => refusals.push(e));
    db.on("peer-disconnect", (info) => closes.push(info.code));
    return { db, refusals, closes };
  }

  async function writesReach(db: ToolDb, server: ToolDb, prefix: string, boundMs: number): Promise<number> {
    const t0 = Date.now();
    const acked = db.putData(`${prefix}-acked`, "acked", false, { ack: 1, timeoutMs: boundMs });
    for (let i = 0; i < WRITES; i++) await db.putData(`${prefix}-${i}`, i);
    await acked;
    await waitUntil(async () => (await Promise.all(Array.from({ length: WRITES }, (_, i) => server.records.get(`${prefix}-${i}`)))).every((r) => r !== undefined), boundMs, "every write at the honest server");
    await waitUntil(() => db.outbox.size === 0, 5000, "the outbox to empty");
    return Date.now() - t0;
  }

  async function intact(db: ToolDb, prefix: string): Promise<void> {
    for (let i = 0; i < WRITES; i++) assert.equal((await db.records.get(`${prefix}-${i}`))?.v, i, "the client's own data");
    assert.equal((await db.records.get(`${prefix}-acked`))?.v, "acked");
  }

  /** A selection with one link wanted, the hostile server first, the honest one known. */
  async function selecting(db: ToolDb, bad: HostileServer, good: ToolDb): Promise<ServerSelection> {
    const sel = new ServerSelection(db, { links: 1, cache: false, refreshInterval: 60_000 });
    stops.push(() => sel.close());
    await sel.ready;
    sel.addServer(bad.url);
    sel.addServer(`ws://127.0.0.3:${portOf(good)}`);
    await waitUntil(() => bad.links.size === 1, 5000, "the client links the hostile server");
    return sel;
  }

  async function droppedNotRedialed(bad: HostileServer, c: { refusals: RefusalEvent[]; closes: number[] }): Promise<void> {
    await waitUntil(() => bad.links.size === 0, 5000, "the hostile link closed");
    assert.ok(c.closes.includes(CloseCode.UNRESPONSIVE), `closed as unresponsive (${c.closes.join(",")})`);
    const refusal = c.refusals.find((e) => e.code === ErrorCode.UNRESPONSIVE);
    assert.ok(refusal, "reported as a refused event UNRESPONSIVE");
    assert.match(refusal.reason, /unanswered/);
    const handshakes = bad.handshakes;
    await new Promise((r) => setTimeout(r, PENALTY_MS / 3));
    assert.equal(bad.handshakes, handshakes, "not redialed at once");
  }

  for (const behaviour of ["silent", "no-putack"] as const) {
    it(`${behaviour}: the client's writes reach the honest server; the hostile link is dropped, not redialed at once (server selection)`, { timeout: 60_000 }, async () => {
      const good = await honestServer();
      const bad = await hostile(behaviour);
      const c = await client();
      const sel = await selecting(c.db, bad, good);
      // Answered queries do not make up for unconfirmed puts.
      const querying = setInterval(() => void c.db.queryKeys("x", false, 200).catch(() => undefined), 300);
      stops.push(() => clearInterval(querying));
      const ms = await writesReach(c.db, good, behaviour, 30_000);
      clearInterval(querying);
      await droppedNotRedialed(bad, c);
      assert.ok(ms < 30_000, `${ms} ms`);
      const entry = sel.list().find((s) => s.url === bad.url)!;
      assert.equal(entry.unresponsive, 1);
      assert.ok((entry.until ?? 0) > c.db.monotonic(), "penalised");
      assert.equal(sel.list().find((s) => s.url !== bad.url)!.state, "linked");
      await intact(c.db, behaviour);
    });
  }

  it("a client on DHT peering (one link wanted) drops the silent server, penalises it and links the honest one", { timeout: 60_000 }, async () => {
    const good = await honestServer();
    const bad = await hostile("silent");
    const c = await client();
    const found: PeerAddress[] = [{ host: "127.0.0.10", port: bad.port }, { host: "127.0.0.3", port: portOf(good) }];
    const source: PeerSource = { on: () => undefined, off: () => undefined, peers: () => found, refresh: () => false, forget: () => false };
    const peering = new DhtPeering(c.db, source, TOPIC, { maxConnections: 1, dialRetries: 3, penaltyMs: PENALTY_MS, dialStaggerMs: 10_000, random: () => 0 });
    // Found on the DHT, not listed: trusted as the operator's, so its confirmations let the writes go (src/node/server-trust.ts).
    c.db.serverTrust.addList((link) => link.port === portOf(good));
    stops.push(() => peering.stop());
    await waitUntil(() => bad.links.size === 1, 5000, "the client links the hostile server");
    await writesReach(c.db, good, "dht", 30_000);
    await droppedNotRedialed(bad, c);
    const candidate = peering.candidates().find((x) => x.host === "127.0.0.10")!;
    assert.ok(candidate.until > c.db.monotonic(), "the hostile address is penalised");
    await intact(c.db, "dht");
  });

  it("a plain `peers` client keeps its honest server and redials the dropped one only after a penalty", { timeout: 60_000 }, async () => {
    const good = await honestServer();
    const bad = await hostile("no-putack");
    const c = await client({ peers: [{ host: "127.0.0.10", port: bad.port }, { host: "127.0.0.3", port: portOf(good) }] });
    await waitUntil(() => c.db.network.peers.length === 2, 5000, "both linked");
    await writesReach(c.db, good, "peers", 30_000);
    await droppedNotRedialed(bad, c);
    assert.ok(c.db.network.peers.some((p) => p.host === "127.0.0.3"), "the honest link stays");
    await intact(c.db, "peers");
  });

  it("an honest server that confirms slowly (half the bound) is not dropped", { timeout: 60_000 }, async () => {
    // Each putAck comes half the bound late (well within it, however loaded the box); writes go on for 1.5 bounds,
    // and the last one's confirmation is waited for: judged over two bounds and more.
    const bound = 3000;
    const slow = await hostile("slow-putack", bound / 2);
    const c = await client({ unresponsiveTimeout: bound, peers: [{ host: "127.0.0.10", port: slow.port }] });
    await waitUntil(() => slow.links.size === 1, 5000, "linked");
    const t0 = Date.now();
    let i = 0;
    while (Date.now() - t0 < 1.5 * bound) await Promise.all([c.db.putData(`slow-${i++}`, i), new Promise((r) => setTimeout(r, 250))]);
    await c.db.putData("slow-last", 1, false, { ack: 1, timeoutMs: 10_000 });
    await waitUntil(() => c.db.outbox.size === 0, 10_000, "every write confirmed");
    assert.equal(slow.links.size, 1, "still linked");
    assert.equal(slow.handshakes, 1);
    assert.deepEqual(c.closes, []);
    assert.equal(c.refusals.filter((e) => e.code === ErrorCode.UNRESPONSIVE).length, 0);
  });
});
