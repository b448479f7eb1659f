/** Announce, lookup, de-dup and late arrival between Discovery instances on a loopback testnet. */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { Discovery, type DiscoveryOptions } from "../../src/entries/discovery.js";
import type { PeerAddress } from "../../src/discovery/peer-table.js";
import { createDhtTestnet, waitForEvent, type DhtTestnet } from "../helpers/dht-testnet.js";

let topicSeq = 0;
/** A fresh topic per test: records announced by earlier tests stay on the testnet. */
let TOPIC = "";

let net: DhtTestnet;
const live: Discovery[] = [];

/** A Discovery on `host`, bootstrapped from the testnet, destroyed after each test. */
function make(host: string, opts: DiscoveryOptions = {}): Discovery {
  const d = new Discovery({
    bootstrap: net.bootstrap,
    host,
    timeout: 500,
    fastInterval: 100,
    slowInterval: 5000,
    lookupTimeout: 3000,
    ...opts,
  });
  live.push(d);
  return d;
}

function peerOn(host: string, port: number) {
  return (_id: unknown, peer: PeerAddress) => peer.host === host && peer.port === port;
}

before(async () => {
  net = await createDhtTestnet(4);
});
beforeEach(() => {
  TOPIC = `tooldb-test-topic-${++topicSeq}`;
});
afterEach(async () => {
  await Promise.all(live.splice(0).map((d) => d.destroy()));
});
after(async () => {
  await net.destroy();
});

describe("announce and lookup", () => {
  it("a lookup-only Discovery finds an announcer, with the announcer's host and port", async () => {
    const server = make("127.0.0.2");
    const client = make("127.0.0.3");
    server.join(TOPIC, 9000);
    client.join(TOPIC);
    const [id, peer, type] = await waitForEvent<[string, PeerAddress, string]>(client, "peer", 5000);
    assert.equal(id, TOPIC);
    assert.deepEqual(peer, { host: "127.0.0.2", port: 9000 });
    assert.equal(type, "dht");
    assert.deepEqual(client.list(), [{ id: TOPIC, port: 0 }]);
    assert.deepEqual(server.list(), [{ id: TOPIC, port: 9000 }]);
  });

  it("a lookup-only Discovery never announces", async () => {
    const announcesFrom: string[] = [];
    const spy = (_hash: Buffer, from: PeerAddress) => announcesFrom.push(from.host);
    for (const n of net.nodes) n.on("announce_peer", spy);
    try {
      const server = make("127.0.0.2");
      const client = make("127.0.0.3", { want: 5 }); // stays at the fast pace
      const announced = waitForEvent(server, "announced", 5000);
      let lookups = 0;
      const looked = waitForEvent(client, "lookup", 5000, () => ++lookups >= 5);
      server.join(TOPIC, 9001);
      client.join(TOPIC);
      // several full lookups by the client
      await Promise.all([announced, looked]);
      assert.ok(announcesFrom.includes("127.0.0.2"), "the announcer's announce reached the testnet");
      assert.ok(!announcesFrom.includes("127.0.0.3"), "the lookup-only node sent announce_peer");

      // an unmodified bittorrent-dht lookup sees the announcer and nothing from the lookup-only host
      const probe = await net.createNode("127.0.0.9");
      const found: PeerAddress[] = [];
      const onPeer = (peer: PeerAddress) => found.push(peer);
      probe.on("peer", onPeer);
      await new Promise<void>((resolve) => probe.lookup(server.infoHashOf(TOPIC), () => resolve()));
      probe.off("peer", onPeer);
      assert.ok(found.some((p) => p.host === "127.0.0.2" && p.port === 9001));
      assert.ok(!found.some((p) => p.host === "127.0.0.3"));
    } finally {
      for (const n of net.nodes) n.off("announce_peer", spy);
    }
  });

  it("reports each peer once over many lookups; forget() makes it reportable again", async () => {
    const a = make("127.0.0.2");
    const b = make("127.0.0.4");
    const client = make("127.0.0.3", { want: 10 });
    a.join(TOPIC, 9002);
    b.join(TOPIC, 9003);
    const seen: string[] = [];
    client.on("peer", (_id, p) => seen.push(`${p.host}:${p.port}`));
    const found = Promise.all([
      waitForEvent(client, "peer", 5000, peerOn("127.0.0.2", 9002)),
      waitForEvent(client, "peer", 5000, peerOn("127.0.0.4", 9003)),
    ]);
    client.join(TOPIC);
    await found;
    // lookups take a k-rpc timeout each here: testnet nodes still list the dead nodes of earlier tests
    let lookups = 0;
    await waitForEvent(client, "lookup", 10_000, () => ++lookups >= 6);
    assert.deepEqual(seen.sort(), ["127.0.0.2:9002", "127.0.0.4:9003"]);
    assert.equal(client.peers(TOPIC).length, 2);

    assert.equal(client.forget(TOPIC, "127.0.0.2", 9002), true);
    assert.equal(client.forget(TOPIC, "127.0.0.2", 9002), false);
    await waitForEvent(client, "peer", 5000, peerOn("127.0.0.2", 9002));
    lookups = 0;
    await waitForEvent(client, "lookup", 5000, () => ++lookups >= 3);
    assert.deepEqual(seen.sort(), ["127.0.0.2:9002", "127.0.0.2:9002", "127.0.0.4:9003"]);
  });

  it("with default intervals, a running looker finds an announcer that starts later within ~2 s", async () => {
    const client = make("127.0.0.3", { fastInterval: undefined, slowInterval: undefined, lookupTimeout: undefined });
    client.join(TOPIC);
    // the client has been looking (and finding nothing) before the server exists
    await waitForEvent(client, "lookup", 5000);
    const started = Date.now();
    const server = make("127.0.0.2", { fastInterval: undefined, slowInterval: undefined, lookupTimeout: undefined });
    server.join(TOPIC, 9004);
    await waitForEvent(client, "peer", 2500, peerOn("127.0.0.2", 9004));
    assert.ok(Date.now() - started < 2500);
  });

  it("refresh() forces a lookup once satisfied (slow pace)", async () => {
    const server = make("127.0.0.2");
    const client = make("127.0.0.3", { slowInterval: 60_000 });
    const found = waitForEvent(client, "peer", 5000, peerOn("127.0.0.2", 9005));
    server.join(TOPIC, 9005);
    client.join(TOPIC);
    await found;
    // satisfied (want 1): once the round in flight ends, the next lookup is a minute away
    await waitForEvent(client, "lookup", 5000, () => client.peers(TOPIC).length > 0);
    const forced = waitForEvent(client, "lookup", 2000);
    assert.equal(client.refresh(TOPIC), true);
    await forced;
    assert.equal(client.refresh("not joined"), false);
  });

  it("an announcer sees itself once (as discovery-channel), skipSelf hides it, and neither counts toward want", async () => {
    const server = make("127.0.0.2", { want: 1 });
    const quiet = make("127.0.0.4", { skipSelf: true });
    const selfPeers: PeerAddress[] = [];
    quiet.on("peer", (_id, p) => selfPeers.push(p));
    const bothSee = Promise.all([
      waitForEvent(server, "peer", 5000, peerOn("127.0.0.2", 9006)),
      waitForEvent(quiet, "peer", 5000, peerOn("127.0.0.2", 9006)),
    ]);
    server.join(TOPIC, 9006);
    quiet.join(TOPIC, 9007);
    await bothSee;
    assert.ok(!selfPeers.some((p) => p.host === "127.0.0.4" && p.port === 9007));
    assert.deepEqual(server.peers(TOPIC).filter((p) => p.port === 9006), []);
  });
});
