/**
 * Found by an outside test (attack/a1-dht-store-flush.mjs): one attacker IP
 * announces 21,000 ports on a topic. Our DHT nodes (startBootstrapNode and
 * every Discovery) store peers in bittorrent-dht's record-cache: 10,000
 * records over all info hashes, and past that it drops its older generation
 * whole. So the flood pushes the real server's announce out of every store we
 * run, and a client that has no peer cache finds only the attacker's ports
 * until the server announces again (4 min later, flushed again as easily).
 * A mainline node such as libtorrent keeps one port per IP and info hash; ours
 * should not let one IP's announces displace everyone else's.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import DHT from "bittorrent-dht";
import { startBootstrapNode, topicInfoHash, type BootstrapNode } from "../../src/entries/discovery.js";
import { destroyDht, dhtEvent } from "../helpers/dht-events.js";
import { announcePorts } from "../helpers/bogus-servers.js";

const TOPIC = "announce-flood";
const REAL = "127.0.5.1";
const REAL_PORT = 4321;
const ATTACKER = "127.0.0.66";
const FLOOD = 21_000;

/** Whether a bittorrent-dht node's peer store holds host:port for the info hash (either generation of record-cache). */
function holds(dht: DHT, infoHash: Buffer, host: string, port: number): boolean {
  const key = Buffer.from([...host.split(".").map(Number), port >> 8, port & 255]).toString("hex");
  const store = (dht as unknown as { _peers: Record<"_fresh" | "_stale", { records: Map<string, { map: Map<string, unknown> }> }> })._peers;
  return [store._fresh, store._stale].some((g) => g.records.get(infoHash.toString("hex"))?.map.has(key) ?? false);
}

describe("a one-IP announce flood on our DHT nodes", { timeout: 180_000 }, () => {
  const ours: BootstrapNode[] = [];
  const plain: DHT[] = [];
  const infoHash = topicInfoHash(TOPIC);

  before(async () => {
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0, bootstrap: false, timeout: 500 });
    ours.push(seed);
    const bootstrap = [`127.0.0.1:${seed.address().port}`];
    for (let i = 0; i < 2; i++) ours.push(await startBootstrapNode({ host: "127.0.0.1", port: 0, bootstrap, timeout: 500 }));
    const node = async (host: string) => {
      const dht = new DHT({ bootstrap, timeout: 500 });
      plain.push(dht);
      dht.on("error", () => undefined);
      const ready = dhtEvent(dht, "ready", 5000);
      dht.listen(0, host);
      await ready;
      return dht;
    };
    await announcePorts(await node(REAL), infoHash, [REAL_PORT]);
    for (const [i, n] of ours.entries()) assert.ok(holds(n.dht, infoHash, REAL, REAL_PORT), `node ${i} never stored the real server`);
    const attacker = await node(ATTACKER);
    await announcePorts(attacker, infoHash, Array.from({ length: FLOOD }, (_, i) => 10_000 + i), 500);
  });

  after(async () => {
    await Promise.all(ours.map((n) => n.close()));
    await Promise.all(plain.map(destroyDht));
  });

  it("keeps the real server's announce on every node", () => {
    for (const [i, node] of ours.entries()) assert.ok(holds(node.dht, infoHash, REAL, REAL_PORT), `node ${i} dropped the real server after ${FLOOD} announces from ${ATTACKER}`);
  });
});
