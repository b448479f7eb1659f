/**
 * WebRtcNetwork in Node (node-datachannel under simple-peer) with a local
 * WebTorrent tracker on loopback and no STUN server: two nodes find each
 * other through the tracker and sync a put and a subscription update with no
 * ToolDb server; bad input (forged offers, garbage on a data channel, a peer
 * of another topic) is refused without a crash; close leaves nothing open.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import TrackerClient, { type TrackerPeer } from "bittorrent-tracker/client";
import WebSocket from "ws";
import { ToolDb, type ToolDbOptions } from "../src/index.js";
import { ErrorCode } from "../src/base/errors.js";
import { WebRtcNetwork, trackerInfoHash } from "../src/entries/webrtc.js";
import { type LocalTracker, LOOPBACK_RTC, localTracker, rtcOn } from "./helpers/tracker.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { waitFor, withTimeout } from "./helpers/wait.js";
import { silentPeerDropped } from "./helpers/heartbeat.js";
import { GatedClock } from "./helpers/manual-clock.js";
import { rawIdentity, signedPing } from "./helpers/raw-peer.js";
import { randomId } from "../src/base/random.js";
import { FrameKind } from "../src/network/stream-framing.js";
import { codeBlocks, runExample } from "./helpers/doc-examples.js";

const T = 15_000;
let topicSeq = 0;

describe("WebRtcNetwork (Node)", () => {
  const nodes: ToolDb[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];

  afterEach(async () => {
    await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "nodes to close");
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function tracker(): Promise<LocalTracker> {
    const t = await localTracker();
    cleanups.push(() => t.close());
    return t;
  }

  async function node(topic: string, opts: Partial<ToolDbOptions>): Promise<ToolDb> {
    const db = new ToolDb({ topic, ...FAST, ...opts });
    nodes.push(db);
    await db.ready;
    return db;
  }
  const linked = (a: ToolDb, b: ToolDb) =>
    waitUntil(() => a.network.isConnected(b.network.getClientAddress()) && b.network.isConnected(a.network.getClientAddress()), T, "WebRTC link");
  const rtc = (db: ToolDb) => db.network as WebRtcNetwork;

  it("two Node peers find each other through the tracker and sync a put and a subscription update, no server", { timeout: 40_000 }, async () => {
    const t = await tracker();
    const topic = `rtc-${process.pid}-${topicSeq++}`;
    const a = await node(topic, { networkAdapter: rtcOn(t) });
    const b = await node(topic, { networkAdapter: rtcOn(t) });
    await linked(a, b);
    assert.equal(a.network.session(b.network.getClientAddress())?.connection.info.transport, "webrtc");
    // One link per peer, whichever side's offer won.
    assert.equal(a.network.peers.length, 1);

    const stored = waitFor(b, "data", T, (r) => r.k === "greeting");
    await a.putData("greeting", "hello over webrtc");
    await stored;
    assert.equal(await b.getData("greeting", false, T), "hello over webrtc");

    const updates: unknown[] = [];
    b.addKeyListener("counter", (r) => updates.push(r.v));
    await b.subscribeData("counter");
    await a.putData("counter", 1);
    await a.putData("counter", 2);
    await waitUntil(() => updates.includes(2), T, "subscription update");
  });

  it("refuses a missing or non-WebSocket tracker URL", () => {
    const host = { options: { ...FAST, server: false } } as never;
    assert.throws(() => new WebRtcNetwork(host, { trackers: [] }), (e: { code?: string }) => e.code === ErrorCode.INVALID_ARGUMENT);
    assert.throws(() => new WebRtcNetwork(host, { trackers: ["http://127.0.0.1:1/announce"] }), (e: { code?: string }) => e.code === ErrorCode.INVALID_ARGUMENT);
  });

  it("refuses a forged offer, garbage on a data channel and a peer of another topic, without a crash", { timeout: 40_000 }, async () => {
    const t = await tracker();
    const topic = `rtc-${process.pid}-${topicSeq++}`;
    const a = await node(topic, { networkAdapter: rtcOn(t) });
    const refusals: Array<{ code: string; reason: string }> = [];
    a.on("refused", (e) => refusals.push(e));
    await waitUntil(() => t.server.torrents[trackerInfoHash(topic)]?.peers.length === 1, T, "A announced");

    // 1. A forged offer: a raw tracker announce whose offer is not SDP.
    const raw = new WebSocket(t.url);
    cleanups.push(() => raw.terminate());
    await new Promise((resolve) => raw.once("open", resolve));
    const bin = (hex: string) => Buffer.from(hex, "hex").toString("latin1");
    raw.send(
      JSON.stringify({
        action: "announce",
        info_hash: bin(trackerInfoHash(topic)),
        peer_id: bin("ff".repeat(20)),
        numwant: 1,
        offers: [{ offer_id: bin("ee".repeat(20)), offer: { type: "offer", sdp: "v=0 this is not sdp" } }],
      }),
    );
    await waitUntil(() => refusals.some((r) => r.code === ErrorCode.BAD_MESSAGE && /WebRTC peer failed/.test(r.reason)), T, "forged offer refused");

    // 2. Garbage on a data channel: a bare tracker client (not ToolDb) connects and sends junk.
    const bare = new TrackerClient({ infoHash: trackerInfoHash(topic), peerId: "ab".repeat(20), announce: [t.url], port: 1, rtcConfig: LOOPBACK_RTC });
    bare.on("warning", () => undefined);
    const barePeers: TrackerPeer[] = [];
    cleanups.push(async () => {
      for (const p of barePeers) p.destroy(); // the tracker client leaves the peers it handed out to us
      await new Promise<void>((resolve) => bare.destroy(() => resolve()));
    });
    bare.on("peer", (p) => {
      barePeers.push(p);
      p.on("error", () => undefined); // the node drops these links: that is the point
      // A message frame of malformed JSON, as soon as a channel opens (a pairing the node
      // replaced may close first: the next announce brings another).
      p.once("connect", () => {
        try {
          p.send(new Uint8Array([0x00, 0x7b, 0x7b, 0x7b]));
        } catch {
          // closed meanwhile
        }
      });
    });
    bare.start();
    await waitUntil(() => refusals.some((r) => r.code === ErrorCode.BAD_MESSAGE && /malformed JSON/.test(r.reason)), T, "garbage refused");
    await waitUntil(() => a.network.peers.length === 0 && barePeers.every((p) => !p.connected), T, "junk links dropped");
    assert.equal(a.network.peers.length, 0);

    // 3. A ToolDb peer of another topic, announced under this topic's info hash. The end that
    // checks the other's handshake refuses: A when the other offered, the other when A did.
    const other = new ToolDb({ topic: `${topic}-other`, ...FAST, networkAdapter: rtcOn(t, { infoHash: trackerInfoHash(topic) }) });
    nodes.push(other);
    other.on("refused", (e) => refusals.push(e));
    await other.ready;
    await waitUntil(() => refusals.some((r) => r.code === ErrorCode.TOPIC_MISMATCH), T, "topic mismatch refused");
    assert.equal(other.network.peers.length, 0);

    // A still works: a good peer links and syncs.
    const b = await node(topic, { networkAdapter: rtcOn(t) });
    await linked(a, b);
    const stored = waitFor(a, "data", T, (r) => r.k === "after");
    await b.putData("after", "still fine");
    await stored;
  });

  it("caps data-channel peers", { timeout: 40_000 }, async () => {
    const t = await tracker();
    const topic = `rtc-${process.pid}-${topicSeq++}`;
    const a = await node(topic, { networkAdapter: rtcOn(t, { maxPeers: 1 }) });
    const b = await node(topic, { networkAdapter: rtcOn(t) });
    await linked(a, b);
    const c = await node(topic, { networkAdapter: rtcOn(t) });
    await waitUntil(() => c.network.isConnected(b.network.getClientAddress()), T, "C links to B");
    assert.equal(a.network.peers.length, 1);
    assert.ok(rtc(a).rtcPeerCount <= 1);
    assert.equal(c.network.isConnected(a.network.getClientAddress()), false);
  });

  it("the transport's heartbeat sweep (its period driven by the test) drops a data-channel peer that stops answering pings and keeps a live one", { timeout: 40_000 }, async () => {
    const t = await tracker();
    const topic = `rtc-${process.pid}-${topicSeq++}`;
    // Only the heartbeat waits for the test; A's announces and connect timeouts run in real time.
    const clock = new GatedClock(7_777);
    const a = await node(topic, { networkAdapter: rtcOn(t), clock, heartbeatInterval: clock.gatedMs });
    const b = await node(topic, { networkAdapter: rtcOn(t) });
    await linked(a, b);
    // A hand-driven peer (a bare tracker client): it completes the handshake on its data channel
    // (a ping when it offered, a pong to the node's ping when it answered), then answers no ping.
    const id = await rawIdentity();
    const { peer: record } = await signedPing(id, topic);
    const bare = new TrackerClient({ infoHash: trackerInfoHash(topic), peerId: "cd".repeat(20), announce: [t.url], port: 1, rtcConfig: LOOPBACK_RTC });
    bare.on("warning", () => undefined);
    const barePeers: TrackerPeer[] = [];
    cleanups.push(async () => {
      for (const p of barePeers) p.destroy();
      await new Promise<void>((resolve) => bare.destroy(() => resolve()));
    });
    const send = (p: TrackerPeer, message: object) => {
      const json = new TextEncoder().encode(JSON.stringify(message));
      const frame = new Uint8Array(json.length + 1);
      frame[0] = FrameKind.MESSAGE;
      frame.set(json, 1);
      try {
        p.send(frame);
      } catch {
        // a pairing the node replaced may close first: the next one handshakes
      }
    };
    bare.on("peer", (p) => {
      barePeers.push(p);
      p.on("error", () => undefined);
      p.once("connect", () => {
        if (p.initiator) send(p, { type: "ping", id: randomId(), to: [id.clientId], clientId: id.clientId, isServer: false, peer: record });
      });
      p.on("data", (data: Uint8Array) => {
        if (data[0] !== FrameKind.MESSAGE) return; // heartbeat pings go unanswered
        const m = JSON.parse(new TextDecoder().decode(data.subarray(1))) as { type: string; id: string };
        if (m.type === "ping") send(p, { type: "pong", id: m.id, to: [], clientId: id.clientId, isServer: false, servers: [], peer: record });
      });
    });
    bare.start();
    await waitUntil(() => a.network.isConnected(id.clientId), T, "the hand-driven peer to complete its handshake");

    // B answers the ping as it reads it; a put it sends after that proves it alive.
    await silentPeerDropped(a, clock, clock.gatedMs, id.clientId, async () => {
      const stored = waitFor(a, "data", T, (r) => r.k === "alive");
      await b.putData("alive", 1);
      await stored;
    });
    assert.ok(a.network.isConnected(b.network.getClientAddress()), "the live peer is kept");
  });

  it("announces carry no more offers than the tracker counts peers to answer them (each offer is a peer connection)", { timeout: 40_000 }, async () => {
    const t = await tracker();
    const topic = `rtc-${process.pid}-${topicSeq++}`;
    const offers = new Map<string, number[]>(); // tracker peer id -> offers per announce
    const onAnnounce = (peerId: string, params: { offers?: unknown[] }) => {
      if (params.offers) offers.set(peerId, [...(offers.get(peerId) ?? []), params.offers.length]);
    };
    t.server.on("start", onAnnounce);
    t.server.on("update", onAnnounce);
    const a = await node(topic, { networkAdapter: rtcOn(t) });
    const b = await node(topic, { networkAdapter: rtcOn(t) });
    await linked(a, b);
    await waitUntil(() => offers.size === 2 && [...offers.values()].every((n) => n.length >= 2), T, "two announces from each node");
    // The first announce knows no count yet (up to 5 offers); from the tracker's answer on, the other node is the only one.
    for (const [, counts] of offers) assert.deepEqual(counts.slice(1).filter((n) => n > 1), [], `offers per announce: ${counts.join(", ")}`);
  });

  it("close leaves no tracker socket or peer connection open", { timeout: 40_000 }, async () => {
    const t = await tracker();
    const topic = `rtc-${process.pid}-${topicSeq++}`;
    const a = await node(topic, { networkAdapter: rtcOn(t) });
    const b = await node(topic, { networkAdapter: rtcOn(t) });
    await linked(a, b);
    await Promise.all([a.close(), b.close()]);
    await a.close(); // idempotent
    assert.equal(rtc(a).rtcPeerCount, 0);
    assert.equal(rtc(b).rtcPeerCount, 0);
    await waitUntil(async () => (await t.sockets()) === 0, T, "tracker sockets to close");
  });

  it("docs/browsers.md §5 runs as written: two nodes link over WebRTC and a put arrives; the process exits by itself", { timeout: 40_000 }, async () => {
    const t = await tracker();
    const sample = codeBlocks("docs/browsers.md").find((code) => code.includes("tooldb-dht/webrtc"));
    assert.ok(sample, "WebRTC sample missing from docs/browsers.md");
    const out = await runExample("browsers-webrtc", sample, { TRACKER_URL: t.url, BIND_ADDRESS: "127.0.0.1" }, 30_000);
    assert.match(out, /bob got: hello over WebRTC/);
  });
});
