/**
 * The candidates a Hyperswarm client's slot rotation dials (src/network/swarm-slots.ts,
 * swarm-pick.ts), attacked by announcers on a private HyperDHT testnet on loopback:
 *  - a stranger that takes the link and stalls its handshake past `replaceTimeout`
 *    was closed but not kept away, so the next rotation dialed it again at once;
 *  - hyperswarm queues a peer dialed before above one never dialed, so fakes the
 *    rotation had rotated out, back from their cooldown, were dialed before an
 *    honest server announced later, which was never tried.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import type { HyperswarmNetwork } from "../src/network/hyperswarm-network.js";
import { fileTestnet, loopbackNodes, swarmOn } from "./helpers/hyperdht-testnet.js";
import { waitUntil } from "./helpers/nodes.js";
import { announcingNode, fakeFilledTopic, topicAnnouncers } from "./helpers/swarm-announcers.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const T = 15_000;
/** The fakes never end their side of a link the client closes: a rotated-out one lingered a second (the default) before the next dial. */
const LINGER_MS = 200;
const testnet = fileTestnet();
const unhandled = collectUnhandledRejections();

describe("a Hyperswarm client's rotation candidates", () => {
  const node = loopbackNodes(T);
  /** Links `db`'s swarm dials from now on to peers other than the server `except` returns (the announcers' own count has a server's dials too). */
  function dialsToOthers(db: ToolDb, except: () => ToolDb | undefined): () => number {
    let n = 0;
    (db.network as HyperswarmNetwork).hyperswarm!.on("connection", (socket, info) => {
      const server = (except()?.network as HyperswarmNetwork | undefined)?.hyperswarm?.keyPair.publicKey;
      if (socket.isInitiator && !(server && info.publicKey.equals(server))) n++;
    });
    return () => n;
  }
  const ticks = (db: ToolDb) => (db.network as unknown as { slots: { rotation: { tick: number }; rotating: boolean } }).slots;

  it("a stranger that stalls its handshake past replaceTimeout is kept away: the next rotations do not dial it again", { timeout: 60_000 }, async () => {
    const { topic, dht } = await announcingNode(testnet(), "hs-abandoned");
    const srv = await node({ topic, server: true, networkAdapter: swarmOn(testnet()) });
    await (srv.network as HyperswarmNetwork).joined;
    // A handshake bound longer than the rotation's replaceTimeout: the rotation gives the stalling link up first.
    const cli = await node({ topic, handshakeTimeout: 20_000, networkAdapter: swarmOn(testnet(), { maxPeers: 1, rotateInterval: 300, replaceTimeout: 1000 }) });
    const linked = () => cli.network.isConnected(srv!.network.getClientAddress());
    await waitUntil(linked, 30_000, "the client to link the server");
    await cli.subscribeData("quiet"); // judged (asked for a record), and nobody writes it: no merit
    const dials = dialsToOthers(cli, () => srv);
    await topicAnnouncers(dht, topic, 1, { stall: true });
    (cli.network as HyperswarmNetwork).refresh();
    await waitUntil(() => dials() >= 1, 30_000, "a rotation to dial the stalling announcer");
    await waitUntil(() => !ticks(cli).rotating, 5000, "the rotation to be abandoned");
    const start = ticks(cli).rotation.tick;
    await waitUntil(() => ticks(cli).rotation.tick >= start + 8, T, "eight more rotation ticks");
    assert.equal(dials(), 1, "the abandoned candidate was dialed again by the next rotations");
    assert.ok(linked(), "the server's link was lost");
    await dht.destroy();
    assert.deepEqual(unhandled, []);
  });

  it("fakes back from their cooldown do not keep a server announced later from being dialed: the next rotation tries it", { timeout: 90_000 }, async () => {
    const { topic, dht, cli } = await fakeFilledTopic(testnet(), node, "hs-fair", 16, 2, { closeLinger: LINGER_MS });
    let srv: ToolDb | undefined;
    const fakeLinks = dialsToOthers(cli, () => srv);
    await cli.subscribeData("held");
    // The rotation takes turns among the fakes until some are back from their cooldown (10 rotations).
    await waitUntil(() => fakeLinks() >= 24, 60_000, "the rotation to dial the fakes, some twice");
    srv = await node({ topic, server: true, networkAdapter: swarmOn(testnet()) });
    await srv.putData("held", "by the real server");
    await (srv.network as HyperswarmNetwork).joined;
    const key = (srv!.network as HyperswarmNetwork).hyperswarm!.keyPair.publicKey.toString("hex");
    const swarm = (cli.network as HyperswarmNetwork).hyperswarm!;
    await waitUntil(() => ((cli.network as HyperswarmNetwork).refresh(), swarm.peers.has(key)), T, "the client's lookup to find the server");
    const before = fakeLinks();
    try {
      await waitUntil(() => cli.network.isConnected(srv!.network.getClientAddress()), T, "the client to link the server");
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${fakeLinks() - before} links made to fakes since it was found`);
    }
    // One rotation may have picked its candidate before the lookup found the server.
    assert.ok(fakeLinks() - before <= 1, `${fakeLinks() - before} links made to fakes before the server found was dialed`);
    assert.equal(await cli.getData("held", false, 5000), "by the real server");
    await dht.destroy();
    assert.deepEqual(unhandled, []);
  });
});
