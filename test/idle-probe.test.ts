/**
 * A client that asks nothing (no writes, no queries: a page that only
 * subscribes) probes its idle server links (src/node/server-probe.ts), so
 * a server that takes the link and answers pings but passes nothing on no
 * longer holds it for good: it is dropped within probe interval + bound,
 * the client links the honest server it also knows, and a write from
 * another client reaches the idle subscriber there. Honest servers stay: a
 * slow one (every message handled 900 ms late, the bound 1.5 s) and a
 * tool-db 2.6.6 server (which proves nothing and never confirms a put, and
 * answers a probe as it answers any unknown function). A server that sends
 * answers under ids of its own is dropped too. Real sockets on
 * loopback; small injected intervals.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, ToolDb, type RefusalEvent, type ToolDbMessage } from "../src/index.js";
import { CloseCode } from "../src/network/connection.js";
import { PROBE_FUNCTION } from "../src/node/server-probe.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { ServerSelection } from "../src/peering/server-selection.js";
import { DhtPeering, type PeerSource } from "../src/peering/dht-peering.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { HostileServer } from "./helpers/hostile-server.js";
import { teardownEach } from "./helpers/teardown.js";
import { startLegacyNode } from "./interop/legacy-node.js";

const TOPIC = "idle-probe";
const SILENCE_MS = 1500;
const PROBE_MS = 500;
/** First probe, its second half the bound later, the drop at the bound, each up to a tick (a quarter of the shorter) late. */
const DROP_BOUND_MS = PROBE_MS + SILENCE_MS + 3 * (PROBE_MS / 4);

describe("idle clients probe their servers", () => {
  const { nodes, stops, closers } = teardownEach();

  async function node(opts: Partial<ToolDb["options"]>): Promise<ToolDb> {
    const db = new ToolDb({ topic: TOPIC, ...FAST, storageName: `idle-${Math.random()}`, ...opts });
    nodes.push(db);
    await db.ready;
    return db;
  }

  /** An idle client: it subscribes to `key` and never writes or queries. */
  async function subscriber(opts: Partial<ToolDb["options"]> = {}) {
    const db = await node({ unresponsiveTimeout: SILENCE_MS, serverProbeInterval: PROBE_MS, ...opts });
    const closes: Array<{ host?: string; code: number }> = [];
    const refusals: RefusalEvent[] = [];
    const got: unknown[] = [];
    const sent: string[] = [];
    db.on("peer-disconnect", (info) => closes.push({ host: info.host, code: info.code }));
    db.on("refused", (e) => refusals.push(e));
    db.on("peer-connect", () => {
      // What the client sends, by type (on every link it gets).
      for (const s of db.network.peers) watchSends(s, sent);
    });
    db.addKeyListener("news", (r) => got.push(r.v));
    await db.subscribeData("news");
    return { db, closes, refusals, got, sent };
  }

  for (const picker of ["selection", "dht"] as const) {
    it(`${picker}: a server that answers pings but nothing else is dropped; a write reaches the subscriber through the honest one`, { timeout: 60_000 }, async () => {
      const honest = await node({ server: true, host: "127.0.0.3", port: 0 });
      const bad = await HostileServer.start(TOPIC, "127.0.0.10");
      closers.push(bad);
      const writer = await node({ peers: [{ host: "127.0.0.3", port: portOf(honest) }] });
      const s = await subscriber();
      // One link wanted, the hostile server first: before probes, the subscriber stayed there.
      if (picker === "selection") {
        const sel = new ServerSelection(s.db, { links: 1, cache: false, refreshInterval: 200 });
        stops.push(() => sel.close());
        await sel.ready;
        sel.addServer(bad.url);
        sel.addServer(`ws://127.0.0.3:${portOf(honest)}`);
      } else {
        const found = [{ host: "127.0.0.10", port: bad.port }, { host: "127.0.0.3", port: portOf(honest) }];
        const source: PeerSource = { on: () => undefined, off: () => undefined, peers: () => found, refresh: () => false, forget: () => false };
        const peering = new DhtPeering(s.db, source, TOPIC, { maxConnections: 1, dialRetries: 3, penaltyMs: 5000, dialStaggerMs: 10_000, random: () => 0 });
        stops.push(() => peering.stop());
      }
      await waitUntil(() => bad.links.size === 1, 5000, "the subscriber links the hostile server");
      const linkedAt = Date.now();
      await waitUntil(() => bad.received.some((f) => f.type === "subscribe"), 5000, "the subscription sent to it");
      await waitUntil(() => s.closes.some((c) => c.code === CloseCode.UNRESPONSIVE), DROP_BOUND_MS + 3000, "the hostile server dropped");
      const ms = Date.now() - linkedAt;
      assert.ok(ms <= DROP_BOUND_MS + 1500, `dropped ${ms} ms after the link (bound ${DROP_BOUND_MS} ms)`);
      assert.equal(s.closes.find((c) => c.code === CloseCode.UNRESPONSIVE)!.host, "127.0.0.10");
      assert.ok(s.refusals.some((e) => e.code === ErrorCode.UNRESPONSIVE && /2 requests unanswered/.test(e.reason)));
      // What judged it: two probes, nothing else asked of it.
      const probes = bad.received.filter((f) => f.type === "function");
      assert.equal(probes.length, 2);
      assert.ok(probes.every((f) => f.function === PROBE_FUNCTION));
      assert.ok(!bad.received.some((f) => f.type === "put" || f.type === "query" || f.type === "get"), "the subscriber asked it nothing else");
      if (picker === "selection") assert.ok(bad.received.some((f) => f.type === "ping"), "server-list pings it answered");

      await waitUntil(() => s.db.network.peers.some((p) => p.host === "127.0.0.3"), 5000, "the subscriber links the honest server");
      const subscribed = () => honest.network.peers.some((p) => p.address === s.db.nodeAddress() && honest.remoteSubscriptions.subscribers("news")?.has(p.clientId));
      await waitUntil(subscribed, 2000, "subscribed at the honest server");
      await writer.putData("news", "hello");
      await waitUntil(() => s.got.includes("hello"), 5000, "the write at the idle subscriber");
      assert.ok(!s.sent.includes("put") && !s.sent.includes("query"), `the subscriber stayed idle (${[...new Set(s.sent)].join(",")})`);
    });
  }

  it("a server that sends answers under ids of its own (never the probe's) is dropped all the same", { timeout: 60_000 }, async () => {
    const bad = await HostileServer.start(TOPIC, "127.0.0.10");
    closers.push(bad);
    // Before: any queryAck or functionReturn ended the wait, whatever its id, so this kept the link for good.
    let n = 0;
    const forged = setInterval(() => {
      bad.broadcast({ type: "functionReturn", id: `forged-${n++}`, code: "NOT_FOUND", return: null });
      bad.broadcast({ type: "queryAck", id: `forged-${n++}`, keys: [] });
    }, 50);
    stops.push(() => clearInterval(forged));
    const s = await subscriber({ peers: [{ host: "127.0.0.10", port: bad.port }] });
    await waitUntil(() => bad.links.size === 1, 5000, "linked");
    const linkedAt = Date.now();
    await waitUntil(() => s.closes.some((c) => c.code === CloseCode.UNRESPONSIVE), DROP_BOUND_MS + 3000, "the forging server dropped");
    assert.ok(Date.now() - linkedAt <= DROP_BOUND_MS + 1500, `dropped ${Date.now() - linkedAt} ms after the link`);
    assert.ok(n > 20, `${n} forged answers sent`);
    assert.equal(bad.received.filter((f) => f.type === "function").length, 2, "two probes, never answered under their ids");
  });

  it("a slow honest server (every message 900 ms late, bound 1.5 s) is probed and kept", { timeout: 60_000 }, async () => {
    const slow = await node({ server: true, host: "127.0.0.3", port: 0 });
    const handle = slow.handleMessage.bind(slow);
    slow.handleMessage = (message: ToolDbMessage, from: PeerSession) => new Promise<void>((resolve) => setTimeout(() => resolve(handle(message, from) as Promise<void> | undefined), 900));
    const s = await subscriber({ peers: [{ host: "127.0.0.3", port: portOf(slow) }] });
    await waitUntil(() => s.db.network.peers.length === 1, 5000, "linked");
    const answers = countProbeAnswers(s.db);
    await new Promise((r) => setTimeout(r, 12 * PROBE_MS));
    assert.ok(answers() >= 4, `${answers()} probes answered`);
    assert.deepEqual(s.closes, []);
    assert.equal(s.refusals.filter((e) => e.code === ErrorCode.UNRESPONSIVE).length, 0);
    assert.equal(s.db.network.peers.length, 1);
  });

  it("a tool-db 2.6.6 server answers probes and is kept, writes to it (never confirmed) or not", { timeout: 60_000 }, async () => {
    const old = await startLegacyNode(`${TOPIC}-${process.pid}`, { server: true });
    closers.push(old);
    const s = await subscriber({ topic: `${TOPIC}-${process.pid}`, peers: [{ host: "127.0.0.1", port: old.net.port! }] });
    await waitUntil(() => s.db.network.peers.length === 1, 5000, "linked");
    assert.equal(s.db.network.peers[0]!.proven, false, "a legacy link");
    const answers = countProbeAnswers(s.db);
    await new Promise((r) => setTimeout(r, 6 * PROBE_MS));
    for (let i = 0; i < 5; i++) await s.db.putData(`legacy-${i}`, i);
    await new Promise((r) => setTimeout(r, 6 * PROBE_MS));
    assert.ok(answers() >= 6, `${answers()} probes answered`);
    assert.deepEqual(s.closes, []);
    assert.equal(s.refusals.filter((e) => e.code === ErrorCode.UNRESPONSIVE).length, 0);
    assert.equal(s.db.network.peers.length, 1);
  });
});

/** Counts the NOT_FOUND answers to the client's probes from now on. */
function countProbeAnswers(db: ToolDb): () => number {
  let n = 0;
  db.on("message", (m) => {
    if (m.type === "functionReturn" && m.code === "NOT_FOUND") n++;
  });
  return () => n;
}

const watched = new WeakSet<PeerSession>();
/** Records the type of every frame `session` sends into `sent`. */
function watchSends(session: PeerSession, sent: string[]): void {
  if (watched.has(session)) return;
  watched.add(session);
  const send = session.sendRaw.bind(session);
  session.sendRaw = (frame: string, type?: string) => {
    sent.push(type ?? "raw");
    return send(frame, type);
  };
}
