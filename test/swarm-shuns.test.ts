/**
 * How long a Hyperswarm client that does not announce the topic keeps away
 * a peer it dialed that did not finish the handshake or left its requests
 * unanswered (src/network/swarm-shuns.ts): a backoff a peer, short the first
 * time, doubling per repeated offence up to 60 s, forgiven after a quiet
 * spell. It was a flat 60 s: one handshake read late on a loaded machine
 * kept an honest server, the only one of a small deployment, away a minute.
 * The rules with fake swarm peers on a manual clock; then a real client on a
 * private HyperDHT testnet on loopback (explicit bootstrap), its clock
 * manual: an honest server whose first handshake the client read late is
 * linked again after the first short wait, and a stranger that never
 * answers is kept off, dialed once per growing wait (bounded dials).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerInfo } from "hyperswarm";
import type { SwarmSocket } from "hyperswarm";
import { ToolDb, type ToolDbOptions } from "../src/index.js";
import { HyperswarmNetwork } from "../src/network/hyperswarm-network.js";
import { ErrorCode } from "../src/base/errors.js";
import { DEFAULT_SHUN_TIMINGS, SwarmShuns } from "../src/network/swarm-shuns.js";
import { SwarmBans } from "../src/network/swarm-bans.js";
import { fileTestnet, swarmOn } from "./helpers/hyperdht-testnet.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { closedAfterEachTest } from "./helpers/raw-peer.js";
import { topicAnnouncers } from "./helpers/swarm-announcers.js";

const T = 15_000;
const { first: FIRST, max: MAX, forgive: FORGIVE } = DEFAULT_SHUN_TIMINGS;

let keySeq = 0;
function peerInfo(): PeerInfo & { banned: boolean } {
  const info = { publicKey: Buffer.alloc(32, ++keySeq), client: true, topics: [], banned: false, disconnectedTime: 0, proven: false, ban: (v: boolean) => void (info.banned = v), reconnect: () => undefined };
  return info;
}

/** The wait `shuns` gave `info`: advanced through on `clock`, checked banned just before its end and free at it. */
function waitOf(clock: ManualClock, info: PeerInfo & { banned: boolean }, ms: number): void {
  assert.equal(info.banned, true);
  clock.advance(ms - 1);
  assert.equal(info.banned, true, `lifted before ${ms} ms`);
  clock.advance(1);
  assert.equal(info.banned, false, `still banned after ${ms} ms`);
}

describe("swarm shuns: the rules", { timeout: 10_000 }, () => {
  it("a peer's wait doubles per offence up to the cap; a quiet spell forgives it; a severe offence waits the cap", () => {
    const clock = new ManualClock(1_000_000);
    let lifts = 0;
    const shuns = new SwarmShuns(new SwarmBans(), DEFAULT_SHUN_TIMINGS, clock, () => lifts++);
    const info = peerInfo();
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const ms = shuns.shun(info);
      waits.push(ms);
      waitOf(clock, info, ms);
    }
    assert.deepEqual(waits, [FIRST, 2 * FIRST, 4 * FIRST, 8 * FIRST, MAX, MAX]);
    assert.equal(lifts, 6);
    clock.advance(FORGIVE);
    assert.equal(shuns.shun(info), FIRST, "forgiven after a quiet spell");
    clock.advance(FIRST);
    const other = peerInfo();
    assert.equal(shuns.shun(other, true), MAX, "no server: the cap at once");
    clock.advance(MAX);
    assert.equal(shuns.shun(other), MAX, "and the cap again next time");
  });

  it("bad shun timings throw INVALID_ARGUMENT", () => {
    for (const bad of [{ shunMs: -1 }, { maxShunMs: 2 ** 31 }, { shunForgiveMs: Number.NaN }, { shunMs: "5" as unknown as number }]) {
      assert.throws(() => HyperswarmNetwork.with(bad), (err: { code?: string }) => err.code === ErrorCode.INVALID_ARGUMENT, JSON.stringify(bad));
    }
  });

  it("a second offence while shunned restarts the wait without a second hold; clear lifts every shun", () => {
    const clock = new ManualClock();
    const bans = new SwarmBans();
    const shuns = new SwarmShuns(bans, DEFAULT_SHUN_TIMINGS, clock);
    const info = peerInfo();
    shuns.shun(info);
    clock.advance(FIRST - 1);
    assert.equal(shuns.shun(info), 2 * FIRST);
    assert.equal(bans.count(info), 1);
    waitOf(clock, info, 2 * FIRST);
    shuns.shun(info);
    shuns.shun(peerInfo());
    shuns.clear();
    assert.equal(info.banned, false);
    assert.equal(clock.pending, 0);
  });
});

describe("swarm shuns: a real client on a HyperDHT testnet", () => {
  const testnet = fileTestnet();
  const nodes = closedAfterEachTest<ToolDb>(T);
  let topicSeq = 0;
  /** The client's handshake timeout, on its manual clock (fired only by `advance`). */
  const HANDSHAKE_MS = 1000;

  async function node(opts: Partial<ToolDbOptions>): Promise<ToolDb> {
    const db = new ToolDb({ host: "127.0.0.1", port: 0, ...FAST, ...opts });
    nodes.push(db);
    await db.ready;
    await (db.network as HyperswarmNetwork).joined;
    return db;
  }
  const swarmOf = (db: ToolDb) => (db.network as HyperswarmNetwork).hyperswarm!;

  it("an honest server whose first handshake the client read late is linked again after the first short wait, not 60 s", { timeout: 60_000 }, async () => {
    const topic = `hs-shun-${process.pid}-${topicSeq++}`;
    const srv = await node({ topic, server: true, networkAdapter: swarmOn(testnet()) });
    const clock = new ManualClock(Date.now());
    const cli = await node({ topic, networkAdapter: swarmOn(testnet()), clock, handshakeTimeout: HANDSHAKE_MS });
    const swarm = swarmOf(cli);
    // The client's first swarm link is not read (a loaded machine): its handshake cannot finish.
    let first: SwarmSocket | undefined;
    swarm.on("connection", (socket: SwarmSocket) => {
      if (first) return;
      first = socket;
      (socket as unknown as { pause(): void }).pause();
    });
    await waitUntil(() => first !== undefined, T, "the client to dial the server");
    const linked = () => cli.network.isConnected(srv.network.getClientAddress());
    clock.advance(HANDSHAKE_MS); // the handshake timed out: the server is shunned
    await waitUntil(() => swarm.connections.size === 0, T, "the swarm to let the link go");
    const info = [...swarm.peers.values()][0] as PeerInfo & { banned: boolean };
    assert.ok(info, "the swarm knows the server");
    assert.equal(linked(), false);
    waitOf(clock, info, FIRST);
    // The shun's end looks the topic up again: the server is dialed and linked, its handshake read this time.
    await waitUntil(linked, T, "the client to link the server again after the first wait");
  });

  it("a stranger that never finishes a handshake is kept off: dialed once per wait, the waits doubling to the cap", { timeout: 90_000 }, async () => {
    const topic = `hs-shun-${process.pid}-${topicSeq++}`;
    const dht = testnet().createNode();
    try {
      await dht.fullyBootstrapped();
      const fake = await topicAnnouncers(dht, topic, 1, { stall: true });
      const clock = new ManualClock(Date.now());
      const cli = await node({ topic, networkAdapter: swarmOn(testnet()), clock, handshakeTimeout: HANDSHAKE_MS });
      const swarm = swarmOf(cli);
      const expected = [FIRST, 2 * FIRST, 4 * FIRST, 8 * FIRST, MAX, MAX];
      let simulated = 0;
      for (let i = 0; i < expected.length; i++) {
        await waitUntil(() => fake.connections() === i + 1 && swarm.connections.size === 1, T, `dial ${i + 1} of the stranger`);
        clock.advance(HANDSHAKE_MS); // it never answered: the handshake timed out
        // The closed stream lingers (real time) before hyperswarm lets it go; minutes pass on the client's clock meanwhile.
        await waitUntil(() => swarm.connections.size === 0, T, "the swarm to let the link go");
        const info = [...swarm.peers.values()][0] as PeerInfo & { banned: boolean };
        waitOf(clock, info, expected[i]!);
        assert.equal(fake.connections(), i + 1, "dialed while shunned");
        simulated += HANDSHAKE_MS + expected[i]!;
      }
      // Over ~3.5 simulated minutes, 6 dials (a flat 60 s shun: 4; no shun: one per handshake timeout).
      assert.ok(simulated >= 3 * 60_000, `${simulated} ms simulated`);
      await waitUntil(() => fake.connections() === expected.length + 1, T, "the dial after the last wait");
    } finally {
      await dht.destroy();
    }
  });
});
