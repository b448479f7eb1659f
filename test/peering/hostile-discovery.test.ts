/**
 * Issue 16, attack 3: bogus announces beside the real server. An attacker
 * announces 50 closed ports, 30 TCP tarpits, 10 WebSocket servers that never
 * answer the handshake and 1 server of another topic on the topic. A
 * DHTClient must still reach the real server, dial each bogus address once
 * (then it is penalised), hold no more dials open than its bound, and its
 * data must reach the server. Then: a server listed by the real one (never
 * announced) is linked through gossip, and after a restart the peer cache
 * makes the real server the first address dialed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DHTClient, DHTServer, topicInfoHash, type DhtNodeOptions } from "../../src/entries/discovery.js";
import { DEFAULT_MAX_DIALS_IN_FLIGHT } from "../../src/peering/dht-peering.js";
import { CloseCode } from "../../src/network/connection.js";
import { createDhtTestnet, type DhtTestnet } from "../helpers/dht-testnet.js";
import { waitUntil } from "../helpers/nodes.js";
import { announcePorts, startBogusFleet, type BogusFleet } from "../helpers/bogus-servers.js";

const TOPIC = "hostile-discovery";
/** The attacker's addresses: each announces its own bogus ports (a DHT stores the announcer's IP). */
const ATTACKERS = ["127.0.0.60", "127.0.0.61", "127.0.0.62", "127.0.0.63"];

function options(testnet: DhtTestnet, extra: DhtNodeOptions = {}): DhtNodeOptions {
  return {
    bootstrap: testnet.bootstrap,
    discovery: { fastInterval: 100, slowInterval: 2000, jitter: 0, timeout: 500 },
    db: { wait: 50, maxReconnectDelay: 400 },
    // Longer than the test: a bogus address dialed twice would be a second dial, not an expired penalty.
    penaltyMs: 60_000,
    ...extra,
  };
}

describe("discovery beside 91 bogus announces", { timeout: 90_000 }, () => {
  let testnet: DhtTestnet;
  let fleet: BogusFleet;
  let server: DHTServer;
  let listed: DHTServer;
  const dataDir = mkdtempSync(join(tmpdir(), "hostile-discovery-"));

  before(async () => {
    testnet = await createDhtTestnet(3);
    fleet = await startBogusFleet(ATTACKERS, { closed: 50, tarpits: 30, silent: 10, otherTopic: 1 });
    for (const [host, ports] of fleet.byHost) await announcePorts(await testnet.createNode(host), topicInfoHash(TOPIC), ports);
    // The real server, and one it links to that is never announced on the DHT.
    listed = new DHTServer(TOPIC, "127.0.0.21", 0, options(testnet, { mechanisms: { mainline: false, peerCache: false } }));
    await listed.start();
    server = new DHTServer(TOPIC, "127.0.0.20", 0, options(testnet, { mechanisms: { peerCache: false, peers: [{ host: "127.0.0.21", port: listed.port }] } }));
    await server.start();
    await waitUntil(() => server.db.network.peers.some((p) => p.address === listed.db.nodeAddress()), 10_000, "the two servers linked");
  });

  after(async () => {
    await Promise.all([server?.stop(), listed?.stop(), fleet?.close()]);
    await testnet?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}.keys`, { recursive: true, force: true });
  });

  it("reaches the real server, dials each bogus address once, within its bound, and its writes arrive", async () => {
    const client = new DHTClient(TOPIC, options(testnet, { dhtHost: "127.0.0.22", dataDir }));
    const refusedTopic: number[] = [];
    client.db.on("dial-failed", (e) => e.final && e.code === CloseCode.TOPIC_MISMATCH && refusedTopic.push(e.port));
    try {
      await client.start();
      // Dials in flight as the client sees them, sampled while it searches.
      let maxInFlight = 0;
      const sample = () => (maxInFlight = Math.max(maxInFlight, client.db.network.dialTargets().filter((t) => t.state === "connecting").length));
      await waitUntil(() => (sample(), client.db.network.peers.some((p) => p.address === server.db.nodeAddress())), 30_000, "the real server");
      // The server it was never told of on the DHT comes through the real server's list.
      await waitUntil(() => client.db.network.peers.some((p) => p.address === listed.db.nodeAddress()), 10_000, "the listed server");
      const bogus = new Set(fleet.all());
      assert.ok(client.db.network.peers.every((p) => !bogus.has(p.port!)), "a bogus address became a peer");
      // The client dials from 127.0.0.1; the real server, which looks the topic up too, from its own address.
      const { maxOpen, perPort } = fleet.dials("127.0.0.1");
      assert.ok(maxInFlight <= DEFAULT_MAX_DIALS_IN_FLIGHT, `${maxInFlight} dials in flight at once`);
      // The attacker sees a little more: a replacement may connect before the dial it replaces has closed there.
      assert.ok(maxOpen <= DEFAULT_MAX_DIALS_IN_FLIGHT * 1.5, `${maxOpen} links held open at the attacker at once`);
      for (const [port, n] of perPort) assert.equal(n, 1, `bogus port ${port} dialed ${n} times`);
      assert.ok(refusedTopic.length <= 1 && refusedTopic.every((p) => fleet.ports.otherTopic.includes(p)));

      await client.db.putData("balance", 42);
      await waitUntil(async () => (await server.db.getData("balance", false, 500)) === 42, 5000, "the write on the real server");
    } finally {
      await client.stop();
    }
  });

  it("after a restart, the peer cache makes a verified server the first address dialed", async () => {
    const client = new DHTClient(TOPIC, options(testnet, { dhtHost: "127.0.0.23", dataDir }));
    const dialed: string[] = [];
    const connectTo = client.db.network.connectTo.bind(client.db.network);
    client.db.network.connectTo = (host, port, opts) => {
      dialed.push(`${host}:${port}`);
      connectTo(host, port, opts);
    };
    try {
      await client.start();
      await waitUntil(() => client.db.network.peers.length > 0, 10_000, "a link");
      const verified = new Set([`127.0.0.20:${server.port}`, `127.0.0.21:${listed.port}`]);
      assert.ok(verified.has(dialed[0]!), `first dial went to ${dialed[0]}`);
      assert.ok(client.db.network.peers.every((p) => verified.has(`${p.host}:${p.port}`)));
    } finally {
      await client.stop();
    }
  });
});
