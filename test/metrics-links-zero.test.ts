/**
 * Found by an outside check: the `tooldb_links` series of a kind vanished
 * when its last link closed (the gauge was reset and rebuilt from the links
 * there were), so dashboards saw a gap instead of 0. Now the WebSocket
 * series of both kinds and directions are always there, and any other
 * combination once seen stays, at 0 when its links are gone.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ToolDb } from "../src/index.js";
import { TcpNetwork } from "../src/network/tcp-network.js";
import { createMetrics, type ToolDbMetrics } from "../src/metrics/index.js";
import { FAST, closeAll, linkServers, startClient, startServer, waitUntil } from "./helpers/nodes.js";

const TOPIC = "links-zero";

/** The tooldb_links samples of a scrape, by their label set. */
async function links(metrics: ToolDbMetrics): Promise<Map<string, number>> {
  const samples = new Map<string, number>();
  for (const m of (await metrics.text()).matchAll(/^tooldb_links(\{[^}]*\}) (\S+)$/gm)) samples.set(m[1]!, Number(m[2]));
  return samples;
}

const label = (kind: string, direction: string, transport = "websocket") => `{kind="${kind}",transport="${transport}",direction="${direction}"}`;

describe("tooldb_links reports 0, not a gap", { timeout: 30_000 }, () => {
  const nodes: ToolDb[] = [];
  const metricsList: ToolDbMetrics[] = [];
  after(async () => {
    for (const m of metricsList) m.close();
    await closeAll(...nodes);
  });

  it("before any link every WebSocket series reads 0; after the last link of a kind closed, its series reads 0", async () => {
    const server = await startServer({ topic: TOPIC });
    nodes.push(server);
    const metrics = createMetrics(server, { defaultMetrics: false });
    metricsList.push(metrics);
    const fresh = await links(metrics);
    for (const kind of ["server", "client"]) for (const direction of ["in", "out"]) assert.equal(fresh.get(label(kind, direction)), 0, `${kind} ${direction} on a fresh node: ${[...fresh].join(" ")}`);

    const client = await startClient([server], { topic: TOPIC });
    const other = await startServer({ topic: TOPIC });
    nodes.push(other);
    await linkServers(server, other);
    const busy = await links(metrics);
    assert.equal(busy.get(label("client", "in")), 1);
    assert.equal(busy.get(label("server", "out")), 1);

    await closeAll(client, other);
    await waitUntil(() => server.network.peers.length === 0, 10_000, "both links closed");
    const quiet = await links(metrics);
    assert.equal(quiet.get(label("client", "in")), 0, "client links gone: 0, not a missing series");
    assert.equal(quiet.get(label("server", "out")), 0, "server links gone: 0, not a missing series");
    assert.equal(quiet.size, fresh.size, `no series came or went: ${[...quiet].join(" ")}`);
  });

  it("another transport's series, once seen, stays at 0 after its last link closed", async () => {
    const server = new ToolDb({ networkAdapter: TcpNetwork, server: true, host: "127.0.0.1", port: 0, topic: TOPIC, ...FAST });
    nodes.push(server);
    await server.ready;
    const metrics = createMetrics(server, { defaultMetrics: false });
    metricsList.push(metrics);
    assert.equal((await links(metrics)).get(label("client", "in", "tcp")), undefined, "not seen yet");
    const port = (server.network as TcpNetwork).port!;
    const client = new ToolDb({ networkAdapter: TcpNetwork, topic: TOPIC, ...FAST, peers: [{ host: "127.0.0.1", port }] });
    await client.ready;
    await waitUntil(() => server.network.peers.length === 1, 10_000, "the TCP link");
    assert.equal((await links(metrics)).get(label("client", "in", "tcp")), 1);
    await client.close();
    await waitUntil(() => server.network.peers.length === 0, 10_000, "the TCP link closed");
    assert.equal((await links(metrics)).get(label("client", "in", "tcp")), 0);
  });
});
