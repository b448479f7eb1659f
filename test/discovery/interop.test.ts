/**
 * Interop with unmodified DHT software on a loopback testnet: plain
 * bittorrent-dht 11 nodes, and discovery-channel 5 (the guide's library,
 * itself on bittorrent-dht 7).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { after, afterEach, before, describe, it } from "node:test";
import type DHT from "bittorrent-dht";
import { Discovery, type DiscoveryOptions } from "../../src/entries/discovery.js";
import type { PeerAddress } from "../../src/discovery/peer-table.js";
import { createDhtTestnet, waitForEvent, type DhtTestnet } from "../helpers/dht-testnet.js";

const require = createRequire(import.meta.url);

let net: DhtTestnet;
const cleanups: Array<() => Promise<void> | void> = [];

function make(host: string, opts: DiscoveryOptions = {}): Discovery {
  const d = new Discovery({ bootstrap: net.bootstrap, host, timeout: 500, fastInterval: 100, lookupTimeout: 3000, ...opts });
  cleanups.push(() => d.destroy());
  return d;
}

const sha1 = (s: string) => createHash("sha1").update(s).digest();

/** Repeats plain lookups until `match` is seen; bounded in time and count. */
async function plainFind(dht: DHT, infoHash: Buffer, match: (p: PeerAddress) => boolean, timeout = 5000): Promise<PeerAddress> {
  const deadline = Date.now() + timeout;
  let found: PeerAddress | undefined;
  const onPeer = (p: PeerAddress, hash: Buffer) => {
    if (hash.equals(infoHash) && match(p)) found ??= p;
  };
  dht.on("peer", onPeer);
  try {
    for (let i = 0; i < 20 && !found && Date.now() < deadline; i++) {
      await new Promise<void>((resolve) => dht.lookup(infoHash, () => resolve()));
    }
  } finally {
    dht.off("peer", onPeer);
  }
  if (!found) throw new Error("plain bittorrent-dht lookup did not find the peer");
  return found;
}

before(async () => {
  net = await createDhtTestnet(3);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
after(async () => {
  await net.destroy();
});

describe("interop with plain bittorrent-dht", () => {
  it("a plain node looking up sha1(topic) finds our announcer", async () => {
    const topic = "interop-plain-1";
    const server = make("127.0.0.2");
    const announced = waitForEvent(server, "announced", 5000);
    server.join(topic, 8123);
    const [, port, nodes] = await announced;
    assert.equal(port, 8123);
    assert.ok((nodes as number) > 0);
    const plain = await net.createNode("127.0.0.5");
    const peer = await plainFind(plain, sha1(topic), (p) => p.port === 8123);
    assert.deepEqual(peer, { host: "127.0.0.2", port: 8123 });
  });

  it("our Discovery finds a server announced by a plain node", async () => {
    const topic = "interop-plain-2";
    const plain = await net.createNode("127.0.0.5");
    await new Promise<void>((resolve, reject) =>
      plain.announce(sha1(topic), 8124, (err) => (err ? reject(err) : resolve())),
    );
    const client = make("127.0.0.3");
    const found = waitForEvent<[string, PeerAddress, string]>(client, "peer", 5000);
    client.join(topic);
    const [id, peer, type] = await found;
    assert.deepEqual([id, peer, type], [topic, { host: "127.0.0.5", port: 8124 }, "dht"]);
  });
});

describe("interop with discovery-channel 5 (the guide's library)", () => {
  interface Channel {
    dht: { listen(port: number, host: string): void };
    join(id: string, port?: number): void;
    on(event: "peer", fn: (id: Buffer, peer: PeerAddress, type: string) => void): void;
    destroy(cb: () => void): void;
  }
  function channel(host: string): Channel {
    const DC = require("discovery-channel") as (opts: object) => Channel;
    // dns off (it would start multicast); interval so its lookup-only join repeats quickly
    const c = DC({ dns: false, dht: { bootstrap: net.bootstrap, timeout: 500, interval: 200 } });
    c.dht.listen(0, host);
    cleanups.push(() => new Promise<void>((resolve) => c.destroy(resolve)));
    return c;
  }

  it("discovery-channel finds our announcer", async () => {
    const topic = "interop-dc-1";
    const server = make("127.0.0.2");
    server.join(topic, 8125);
    const c = channel("127.0.0.6");
    const found = waitForEvent<[Buffer, PeerAddress, string]>(c as never, "peer", 5000, (_id, p) => p.port === 8125);
    c.join(topic);
    const [id, peer, type] = await found;
    assert.equal(id.toString(), topic); // discovery-channel reports the topic as a Buffer
    assert.deepEqual([peer, type], [{ host: "127.0.0.2", port: 8125 }, "dht"]);
  });

  it("we find a discovery-channel announcer", async () => {
    const topic = "interop-dc-2";
    const c = channel("127.0.0.6");
    c.join(topic, 8126);
    const client = make("127.0.0.3");
    const found = waitForEvent<[string, PeerAddress]>(client, "peer", 5000);
    client.join(topic);
    const [id, peer] = await found;
    assert.equal(id, topic);
    assert.deepEqual(peer, { host: "127.0.0.6", port: 8126 });
  });
});
