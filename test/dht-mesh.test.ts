import { freePort } from "../faults/ports.js";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import DHT from "bittorrent-dht";
import { DHTClient, DHTServer, topicInfoHash, type DhtNodeOptions } from "../src/entries/discovery.js";
import { ToolDb, signPeerRecord, EcdsaUser } from "../src/index.js";
import { createDhtTestnet, type DhtTestnet } from "./helpers/dht-testnet.js";
import { waitUntil } from "./helpers/nodes.js";

const TOPIC = "mesh-test";
/** Fast, deterministic timings: lookups every 100 ms while a topic lacks peers. */
function fast(testnet: DhtTestnet, extra: DhtNodeOptions = {}): DhtNodeOptions {
  return {
    bootstrap: testnet.bootstrap,
    discovery: { fastInterval: 100, slowInterval: 2000, jitter: 0, timeout: 500 },
    db: { wait: 50, maxReconnectDelay: 400, random: () => 0, handshakeTimeout: 1000 },
    penaltyMs: 60_000,
    ...extra,
  };
}

function serverLinks(s: DHTServer): number {
  return s.db.network.peers.filter((p) => p.isServer).length;
}

describe("DHT discovery: servers announce, clients find them, the mesh forms", () => {
  let testnet: DhtTestnet;
  const nodes: Array<DHTServer | DHTClient> = [];
  const track = <T extends DHTServer | DHTClient>(n: T) => (nodes.push(n), n);

  before(async () => {
    testnet = await createDhtTestnet(3);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await testnet.destroy();
  });

  it("3 servers and 2 clients form a mesh by discovery alone, and a put travels", async () => {
    const servers = ["127.0.0.2", "127.0.0.3", "127.0.0.4"].map((h) => track(new DHTServer(TOPIC, h, 0, fast(testnet))));
    await Promise.all(servers.map((s) => s.start()));
    const clients = ["127.0.0.5", "127.0.0.6"].map((h) => track(new DHTClient(TOPIC, fast(testnet, { dhtHost: h }))));
    await Promise.all(clients.map((c) => c.start()));
    await waitUntil(() => servers.every((s) => serverLinks(s) === 2), 10_000, "full server mesh");
    await waitUntil(() => clients.every((c) => c.db.network.peers.length >= 1), 10_000, "client links");
    const [a, b] = clients as [DHTClient, DHTClient];
    await a.db.putData("mesh", "found without addresses");
    await waitUntil(async () => (await b.db.getData("mesh", false, 500)) === "found without addresses", 5000, "put across the mesh");
    await Promise.all([...servers, ...clients].map((n) => n.stop()));
  });

  it("a server started after the clients is found and used", async () => {
    const topic = `${TOPIC}-late`;
    const client = track(new DHTClient(topic, fast(testnet, { dhtHost: "127.0.0.7" })));
    await client.start();
    await new Promise((r) => setTimeout(r, 300)); // the client is running and has found nothing
    assert.equal(client.db.network.peers.length, 0);
    const started = Date.now();
    const server = track(new DHTServer(topic, "127.0.0.8", 0, fast(testnet)));
    await server.start();
    await waitUntil(() => client.db.network.peers.length === 1, 5000, "late server found");
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 5000, `found after ${elapsed} ms`);
    await client.db.putData("late", 1);
    await waitUntil(async () => (await server.db.records.get("late")) !== undefined, 2000, "put reaches the late server");
    await Promise.all([client.stop(), server.stop()]);
  });

  it("clients fail over to another server within 1 s when theirs is killed, and re-dial it when it restarts", async () => {
    const topic = `${TOPIC}-failover`;
    const s1 = track(new DHTServer(topic, "127.0.0.9", 0, fast(testnet)));
    const s2 = track(new DHTServer(topic, "127.0.0.10", 0, fast(testnet)));
    await Promise.all([s1.start(), s2.start()]);
    const client = track(new DHTClient(topic, fast(testnet, { dhtHost: "127.0.0.11", maxConnections: 1 })));
    await client.start();
    await waitUntil(() => client.db.network.peers.length === 1, 5000, "client linked");
    const victim = client.db.network.peers[0]!.address === s1.db.nodeAddress() ? s1 : s2;
    const survivor = victim === s1 ? s2 : s1;
    const victimPort = victim.port;
    const victimHost = victim.host;
    const killedAt = Date.now();
    await victim.stop();
    await waitUntil(() => client.db.network.peers.some((p) => p.address === survivor.db.nodeAddress()), 1000, "failover within 1 s");
    const failoverMs = Date.now() - killedAt;
    assert.ok(failoverMs <= 1000, `failover took ${failoverMs} ms`);
    // The killed server comes back on the same address: the survivor re-dials it.
    const restarted = track(new DHTServer(topic, victimHost, victimPort, fast(testnet)));
    await restarted.start();
    await waitUntil(() => survivor.db.network.peers.some((p) => p.address === restarted.db.nodeAddress()), 5000, "re-dial of the restarted server");
    await Promise.all([client.stop(), survivor.stop(), restarted.stop()]);
  });

  it("bogus announcements never become peers and each costs a bounded number of dials", async () => {
    const topic = `${TOPIC}-bogus`;
    const infoHash = topicInfoHash(topic);
    const announcer = await testnet.createNode("127.0.0.12");
    const announce = (port: number) =>
      new Promise<void>((resolve, reject) => announcer.announce(infoHash, port, (err) => (err ? reject(err) : resolve())));

    // 1. A closed port.
    const closed = await freePort(["127.0.0.12"]);
    // 2. A TCP service that is not ToolDb (accepts, says something else, counts dials).
    let tcpDials = 0;
    const tcp = createServer((socket) => {
      tcpDials++;
      socket.on("error", () => undefined);
      socket.resume(); // read, so the peer's close is seen
      socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    await listen(tcp, "127.0.0.12");
    // 3. A ToolDb server of another topic.
    const other = new ToolDb({ server: true, host: "127.0.0.12", port: 0, topic: "another-topic" });
    await other.ready;
    let otherDials = 0;
    other.on("refused", () => otherDials++);
    // 4. A forged peer record: a server whose record claims our topic but signs with another key.
    const forger = new ToolDb({ server: true, host: "127.0.0.12", port: 0, topic });
    await forger.ready;
    const liar = new EcdsaUser();
    await liar.ready;
    const honest = forger.localPeerRecord.bind(forger);
    forger.localPeerRecord = async () => ({ ...(await honest()), sig: (await signPeerRecord(liar, topic, "127.0.0.12", 1, Date.now())).sig });
    let forgerDials = 0;
    forger.on("peer-connect", () => forgerDials++);

    const ports = [closed, portOfTcp(tcp), (other.network as unknown as { port: number }).port, (forger.network as unknown as { port: number }).port];
    for (const p of ports) await announce(p);

    const client = track(new DHTClient(topic, fast(testnet, { dhtHost: "127.0.0.13", maxConnections: 8, dialRetries: 2 })));
    const found = new Set<number>();
    client.onPeerFound = (p) => found.add(p.port);
    const failed: number[] = [];
    client.db.on("dial-failed", (e) => e.final && failed.push(e.port));
    await client.start();
    await waitUntil(() => ports.every((p) => found.has(p)), 5000, "all bogus announcements seen");
    await waitUntil(() => ports.every((p) => failed.includes(p)), 8000, "every bogus address given up");
    // Keep looking up for a while: penalised addresses are not dialed again.
    const dialsSoFar = tcpDials + otherDials;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(client.db.network.peers.length, 0, "no bogus address became a peer");
    assert.ok(tcpDials <= 3, `non-ToolDb service dialed ${tcpDials} times`);
    assert.ok(otherDials <= 1, `other-topic server dialed ${otherDials} times`);
    assert.equal(tcpDials + otherDials, dialsSoFar, "no dials during the penalty");
    assert.equal(failed.filter((p) => p === ports[2]).length, 1);
    await client.stop();
    await Promise.all([other.close(), forger.close(), new Promise((r) => tcp.close(r))]);
    void forgerDials;
  });

  it("an unmodified bittorrent-dht node finds a tooldb-dht server by sha1(topic), and our client finds what it announced", async () => {
    const topic = `${TOPIC}-raw`;
    const server = track(new DHTServer(topic, "127.0.0.14", 0, fast(testnet)));
    await server.start();
    const raw: DHT = await testnet.createNode("127.0.0.15");
    const seen = await new Promise<{ host: string; port: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("raw lookup found nothing")), 5000);
      const poll = () => raw.lookup(topicInfoHash(topic), () => undefined);
      const interval = setInterval(poll, 200);
      raw.on("peer", (peer, hash) => {
        if (Buffer.from(hash).equals(topicInfoHash(topic)) && peer.port === server.port) {
          clearTimeout(timer);
          clearInterval(interval);
          resolve(peer);
        }
      });
      poll();
    });
    assert.deepEqual(seen, { host: "127.0.0.14", port: server.port });

    // The reverse: a server announced by the raw node (on behalf of a ToolDb server) is used by our client.
    const plain = new ToolDb({ server: true, host: "127.0.0.15", port: 0, topic: `${topic}-2` });
    await plain.ready;
    const plainPort = (plain.network as unknown as { port: number }).port;
    await new Promise<void>((resolve, reject) => raw.announce(topicInfoHash(`${topic}-2`), plainPort, (err) => (err ? reject(err) : resolve())));
    const client = track(new DHTClient(`${topic}-2`, fast(testnet, { dhtHost: "127.0.0.16" })));
    await client.start();
    await waitUntil(() => client.db.network.peers.some((p) => p.address === plain.nodeAddress()), 5000, "client uses the raw announce");
    await Promise.all([client.stop(), server.stop(), plain.close()]);
  });
});

function listen(server: Server, host: string): Promise<void> {
  return new Promise((resolve) => server.listen(0, host, () => resolve()));
}

function portOfTcp(server: Server): number {
  const a = server.address();
  if (!a || typeof a === "string") throw new Error("not listening");
  return a.port;
}

