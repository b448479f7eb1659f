/**
 * Issue 20, point 3: servers keep their server links between the mesh's
 * bounds, and the address exchange keeps the mesh connected as servers
 * leave. No DHT here: every server is told one seed server only, so all it
 * knows of the others comes through the exchange, and the seed is among the
 * servers that leave.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DHTServer, type DhtNodeOptions } from "../../src/entries/discovery.js";
import { waitUntil } from "../helpers/nodes.js";

const TOPIC = "server-mesh";
const MIN = 3;
const MAX = 5;

function options(seed?: { host: string; port: number }): DhtNodeOptions {
  return {
    mechanisms: { mainline: false, peerCache: false, ...(seed ? { peers: [seed] } : {}) },
    mesh: { minLinks: MIN, maxLinks: MAX, exchangeIntervalMs: 200 },
    penaltyMs: 500,
    db: { wait: 50, maxReconnectDelay: 400 },
  };
}

function links(s: DHTServer): string[] {
  return s.db.network.peers.filter((p) => p.isServer).map((p) => p.address);
}

/** Whether the servers' links form one connected graph. */
function connected(servers: DHTServer[]): boolean {
  const byAddress = new Map(servers.map((s) => [s.db.nodeAddress(), s]));
  const seen = new Set<string>([servers[0]!.db.nodeAddress()]);
  const queue = [servers[0]!];
  while (queue.length > 0) {
    for (const a of links(queue.pop()!)) {
      if (seen.has(a) || !byAddress.has(a)) continue;
      seen.add(a);
      queue.push(byAddress.get(a)!);
    }
  }
  return seen.size === servers.length;
}

const withinBounds = (servers: DHTServer[]) => servers.every((s) => links(s).length >= MIN && links(s).length <= MAX);

describe("the server mesh: degree bounds and address exchange", { timeout: 60_000 }, () => {
  const servers: DHTServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("8 servers told of one seed stay within their bounds and connected after 3 leave, the seed among them", async () => {
    const seed = new DHTServer(TOPIC, "127.0.0.30", 0, options());
    servers.push(seed);
    await seed.start();
    for (let i = 1; i < 8; i++) {
      const s = new DHTServer(TOPIC, `127.0.0.${30 + i}`, 0, options({ host: "127.0.0.30", port: seed.port }));
      servers.push(s);
      await s.start();
    }
    // The seed was dialed by all 7 and keeps at most MAX of them.
    await waitUntil(() => withinBounds(servers) && connected(servers), 20_000, "all 8 within bounds and connected");
    assert.ok(links(seed).length <= MAX);

    const leaving = [servers[0]!, servers[3]!, servers[5]!];
    const staying = servers.filter((s) => !leaving.includes(s));
    await Promise.all(leaving.map((s) => s.stop()));
    const gone = new Set(leaving.map((l) => l.db.nodeAddress()));
    const noneToGone = () => staying.every((s) => links(s).every((a) => !gone.has(a)));
    // 5 servers with at least 3 links each can't split: each part would need 4 of them.
    await waitUntil(() => noneToGone() && withinBounds(staying) && connected(staying), 20_000, "the 5 left within bounds and connected");
  });
});
