/**
 * The one table of pending requests (forwarded gets and queries, catch-up
 * gets) is shared fairly: a peer and its IP may hold a share of it, and a
 * full table gives up the oldest request of whoever holds the most. An
 * outside check kept it full with a flood of gets for missing keys (honest
 * forwarded gets came back empty 12 times in 17) and with unproven fake
 * "legacy servers" that listed 10,000 keys and never answered a get (the
 * server sent 700,000 gets in 15 s).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import { ErrorCode } from "../src/base/errors.js";
import { randomId } from "../src/base/random.js";
import { PendingRequests } from "../src/node/pending-requests.js";
import { RequestShares, ownerOf, type RequestOwner } from "../src/node/request-shares.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { RefusalEvent } from "../src/network/network-host.js";
import { linkServers, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { RawLink, closedAfterEachTest, rawIdentity, type RawIdentity } from "./helpers/raw-peer.js";
import { signRecord } from "../src/node/record-signer.js";
import type { ToolDbRecord } from "../src/records/record.js";

const T = 10_000;

describe("pending request shares", { timeout: 90_000 }, () => {
  const nodes = closedAfterEachTest<ToolDb>(T);

  it("a peer and a site hold at most their share; a full table gives up the oldest request of whoever holds the most", () => {
    const clock = new ManualClock();
    const table = new PendingRequests<string>(16, clock); // 2 a client, 4 a site
    const timedOut: string[] = [];
    const add = (id: string, peer?: string, site?: string) => table.add(id, 1000, () => undefined, () => timedOut.push(id), { owner: peer === undefined ? undefined : { peer, site } });
    assert.equal(add("a1", "a", "10.0.0.0/24"), true);
    assert.equal(add("a2", "a", "10.0.0.0/24"), true);
    assert.equal(add("a3", "a", "10.0.0.0/24"), false, "over the peer's share");
    assert.equal(add("b1", "b", "10.0.0.0/24"), true);
    assert.equal(add("b2", "b", "10.0.0.0/24"), true);
    assert.equal(add("c1", "c", "10.0.0.0/24"), false, "over the site's share");
    assert.equal(add("h1", "honest", "10.0.9.0/24"), true);
    for (let i = 0; i < 11; i++) assert.equal(add(`own${i}`), true);
    assert.equal(table.size, 16);
    // Full: the next request gives up the oldest of the site holding the most (a1), never the honest peer's.
    assert.equal(add("d1", "d", "10.0.2.0/24"), true);
    assert.deepEqual(timedOut, ["a1"]);
    assert.equal(add("d2", "d", "10.0.2.0/24"), true);
    assert.deepEqual(timedOut, ["a1", "a2"]);
    assert.ok(table.has("h1"));
    table.remove("b1");
    assert.equal(add("a4", "a", "10.0.0.0/24"), true, "room again once its requests are done");
    clock.advance(1000);
    assert.equal(table.size, 0);
  });

  it("a proven server holds a larger share than a client, and may bring its site to it; the site's clients stay within theirs", () => {
    const table = new PendingRequests<string>(16, new ManualClock()); // 2 a client, 4 a site; 8 a proven server (and its site)
    const add = (id: string, owner: RequestOwner) => table.add(id, 1000, () => undefined, () => undefined, { owner });
    const hub = { peer: "hub", site: "10.0.0.0/24", server: true };
    for (let i = 0; i < 8; i++) assert.equal(add(`hub${i}`, hub), true, `hub request ${i}`);
    assert.equal(add("hub8", hub), false, "over the proven server's share");
    assert.equal(add("c1", { peer: "c", site: "10.0.0.0/24" }), false, "a client of a site holding over its share");
    const other = { peer: "other", site: "10.0.0.0/24", server: true };
    assert.equal(add("o1", other), false, "the site holds the servers' share too (servers behind one NAT share it)");
    assert.equal(add("o2", { peer: "other", site: "10.0.7.0/24", server: true }), true);
    assert.deepEqual(table.shares.limits(hub), { peer: 8, site: 8 });
    assert.deepEqual(table.shares.limits({ peer: "c" }), { peer: 2, site: 4 });
  });

  it("requests are held for a link's address site: an IPv6 host's addresses in one /48 are one holder, and a proven server holds the server share", () => {
    const session = (chargedIp: string | undefined, provenServer = false) => ({ clientId: randomId(), chargedIp, provenServer }) as unknown as PeerSession;
    assert.equal(ownerOf(session("2001:db8:1:2::5")).site, "2001:db8:1::/48");
    assert.equal(ownerOf(session("2001:db8:1:ffff:1:2:3:4")).site, "2001:db8:1::/48");
    assert.equal(ownerOf(session("192.0.2.77")).site, "192.0.2.0/24");
    assert.equal(ownerOf(session(undefined)).site, undefined, "dialed out or exempt: no site");
    assert.equal(ownerOf(session("192.0.2.77", true)).server, true);
    // Sybils with an identity and an address each, all in one /48: together within the site's share,
    // so they neither fill the table nor make an honest hub (dialed out: no site) the largest holder to evict.
    const table = new PendingRequests<string>(64, new ManualClock()); // 8 a client, 16 a site, 32 a proven server
    const timedOut: string[] = [];
    const add = (id: string, owner: RequestOwner) => table.add(id, 1000, () => undefined, () => timedOut.push(id), { owner });
    const hub = ownerOf(session(undefined, true));
    for (let i = 0; i < 24; i++) assert.equal(add(`hub${i}`, hub), true);
    let held = 0;
    for (let i = 0; i < 1000; i++) if (add(`sybil${i}`, ownerOf(session(`2001:db8:1:${(i % 65536).toString(16)}::${i.toString(16)}`)))) held++;
    assert.equal(held, 16, "the /48 held its share");
    assert.deepEqual(timedOut, [], "no request given up: the table never filled");
  });

  it("the largest holder is tracked as requests come and go (the oldest request of a holder of the most, as a scan finds it)", () => {
    const shares = new RequestShares(1 << 20);
    const owners: RequestOwner[] = Array.from({ length: 12 }, (_, i) => ({ peer: `p${i}`, site: i % 3 === 0 ? undefined : `s${i % 4}` }));
    const live = new Map<string, RequestOwner>();
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let step = 0; step < 5000; step++) {
      if (live.size > 0 && random(5) < 2) {
        const ids = [...live.keys()];
        const id = ids[random(ids.length)]!;
        shares.remove(id, live.get(id)!);
        live.delete(id);
      } else {
        const id = `r${step}`;
        const owner = owners[random(owners.length)]!;
        shares.add(id, owner);
        live.set(id, owner);
      }
      // A scan: every holder's requests in the order added.
      const holders = new Map<string, string[]>();
      for (const [id, owner] of live) {
        for (const holder of [`p:${owner.peer}`, ...(owner.site === undefined ? [] : [`s:${owner.site}`])]) {
          if (!holders.has(holder)) holders.set(holder, []);
          holders.get(holder)!.push(id);
        }
      }
      const most = Math.max(0, ...[...holders.values()].map((ids) => ids.length));
      const heaviest = shares.heaviest();
      if (most === 0) {
        assert.equal(heaviest, undefined);
        continue;
      }
      const oldestOfLargest = [...holders.values()].filter((ids) => ids.length === most).map((ids) => ids[0]);
      assert.ok(heaviest !== undefined && oldestOfLargest.includes(heaviest), `step ${step}: ${heaviest} is not the oldest of a holder of ${most}`);
    }
  });

  it("a flood of gets for missing keys is forwarded within the flooder's share: an honest client's forwarded gets still find their records", async () => {
    // S2 takes S1's forwarded gets at 500 a second: unbounded, the flood queued the honest gets behind it past their timeout.
    const s2 = await startServer({ serverSync: false, limits: { messageRate: 500, messageBurst: 500 } });
    const s1 = await startServer({ serverSync: false, maxPendingRequests: 512 });
    nodes.push(s1, s2);
    const refused: RefusalEvent[] = [];
    s1.on("refused", (e) => refused.push(e));
    for (let i = 0; i < 5; i++) await s2.putData(`remote-${i}`, i);
    await linkServers(s1, s2);
    await waitUntil(() => s1.network.session(s2.network.getClientAddress())?.provenServer === true, T, "S2 proven at S1");
    const client = await startClient([s1]);
    nodes.push(client);
    const attacker = await RawLink.open(portOf(s1), { topic: "test", from: "127.0.41.1", id: await rawIdentity() });
    await attacker.handshake();
    for (let i = 0; i < 3000; i++) attacker.send({ type: "get", id: randomId(), to: [], key: `missing-${randomId()}` });
    await waitUntil(() => s1.requests.size >= s1.requests.shares.perPeer, T, "the flood forwarded");
    const found: unknown[] = [];
    for (let i = 0; i < 5; i++) found.push(await client.getData(`remote-${i}`, false, 2000));
    assert.deepEqual(found, [0, 1, 2, 3, 4]);
    assert.ok(refused.some((e) => e.code === ErrorCode.RATE_LIMITED && /not forwarded/.test(e.reason)), "the flood was held to its share");
    assert.ok(s1.requests.size <= s1.requests.shares.perPeer + 1, `${s1.requests.size} requests pending at S1`);
  });

  it("a fake legacy server that lists many keys and answers no get is asked a bounded number of gets", async () => {
    const server = await startServer();
    nodes.push(server);
    const fake = await legacyServer(server, "127.0.41.2", Array.from({ length: 5000 }, (_, k) => `fake-${k}`), () => undefined);
    await waitUntil(() => server.sync.progress.completed >= 1, 30_000, "the catch-up with the fake server to stop");
    assert.ok(fake.gets <= 2 * 64, `${fake.gets} gets sent to a server that answered none`);
    assert.ok(server.requests.size < 64, `${server.requests.size} requests still pending`);
  });
});

describe("legacy catch-up", { timeout: 90_000 }, () => {
  const nodes = closedAfterEachTest<ToolDb>(T);

  it("a fake legacy server answering every get with one record of another key, and 1 in 32 with the key asked, is asked about 64 + 2 gets an answer", async () => {
    const server = await startServer();
    nodes.push(server);
    const id = await rawIdentity();
    // One stored record reused under every get's id: any put under the id resolved the get, and the catch-up ran to its end.
    const decoy = await signRecord(id.user, `decoy-${randomId()}`, "decoy", Date.now(), 0, false);
    let asked = 0;
    const fake = await legacyServer(server, "127.0.41.3", Array.from({ length: 5000 }, (_, k) => `fake-${k}`), async (get, link) => {
      const data = ++asked % 32 === 0 ? await signRecord(id.user, get.key, "asked", Date.now(), 0, false) : decoy;
      link.send({ type: "put", id: get.id, to: [], data });
    }, id);
    await waitUntil(() => server.sync.progress.completed >= 1, 30_000, "the catch-up with the fake server to stop");
    const answered = Math.floor(fake.gets / 32);
    assert.ok(fake.gets <= 64 + 2 * answered + 64, `${fake.gets} gets sent for ${answered} answered with the key asked`);
    assert.ok(fake.gets < 200, `${fake.gets} gets sent`);
  });

  it("replies the checks refuse are answers: 100 tool-db 2.6.6 records (legacyRecords off) in a row do not stop the catch-up before the valid keys", async () => {
    const server = await startServer();
    nodes.push(server);
    const refused: RefusalEvent[] = [];
    server.on("refused", (e) => refused.push(e));
    const id = await rawIdentity();
    const at = Date.now();
    const records = new Map<string, ToolDbRecord>();
    for (let i = 0; i < 100; i++) records.set(`old-${i}`, await signRecord(id.user, `old-${i}`, i, at, 0, true)); // refused here, not struck
    for (let i = 0; i < 50; i++) records.set(`new-${i}`, await signRecord(id.user, `new-${i}`, i, at, 0, false));
    const fake = await legacyServer(server, "127.0.41.4", [...records.keys()], (get, link) => {
      const data = records.get(get.key);
      if (data) link.send({ type: "put", id: get.id, to: [], data });
    }, id);
    await waitUntil(() => server.sync.progress.completed >= 1, 30_000, "the catch-up to end");
    assert.equal(fake.gets, 150);
    assert.ok(refused.some((e) => e.code === ErrorCode.RECORD_REFUSED), "the 2.6.6 records were refused");
    for (let i = 0; i < 50; i++) assert.equal((await server.records.get(`new-${i}`))?.v, i, `new-${i} fetched`);
    assert.equal(fake.link.isClosed, false, "the peer was not struck off");
  });

  it("a get the table refuses for the peer's share waits for room instead of counting as unanswered", async () => {
    // 128 pending requests: an unproven peer holds 16, fewer than the 64 gets a catch-up keeps in flight.
    const server = await startServer({ maxPendingRequests: 128 });
    nodes.push(server);
    const id = await rawIdentity();
    const at = Date.now();
    const records = new Map<string, ToolDbRecord>();
    for (let i = 0; i < 300; i++) records.set(`k-${i}`, await signRecord(id.user, `k-${i}`, i, at, 0, false));
    let most = 0;
    const fake = await legacyServer(server, "127.0.41.5", [...records.keys()], (get, link) => {
      most = Math.max(most, server.requests.size);
      setTimeout(() => link.send({ type: "put", id: get.id, to: [], data: records.get(get.key) }), 5);
    }, id);
    await waitUntil(() => server.sync.progress.completed >= 1, 30_000, "the catch-up to end");
    assert.equal(fake.gets, 300);
    let stored = 0;
    for (const key of records.keys()) if ((await server.records.get(key)) !== undefined) stored++;
    assert.equal(stored, 300, "every listed key fetched (before: the refused gets used up the 64 misses at once)");
    assert.ok(most <= server.requests.shares.perPeer, `${most} gets pending for the peer`);
  });

  it("gets that never went out are not counted fetched: those waiting for their ping to a 2.6.6 peer when its link closed", async () => {
    // A manual clock: the gets wait for their ping slot (legacy-reasks.ts) until the test moves it, after the link closed.
    const clock = new ManualClock(Date.now());
    const server = await startServer({ clock });
    nodes.push(server);
    const id = await rawIdentity();
    const sent = new Map<string, ToolDbRecord>();
    for (let i = 0; i < 5; i++) sent.set(`sent-${i}`, await signRecord(id.user, `sent-${i}`, i, Date.now(), 0, false));
    // It sends its records before it lists their keys: 2.6.6 would not send them again on the link, so each get waits for a ping.
    const onQuery = (link: RawLink) => {
      for (const data of sent.values()) link.put(data);
    };
    const fake = await legacyServer(server, "127.0.41.6", [...sent.keys(), "never-sent"], () => undefined, id, onQuery);
    await waitUntil(() => fake.gets === 1 && server.requests.size === 6, 5000, "the get of the key the peer never sent sent, the others waiting for the ping");
    fake.link.terminate();
    await waitUntil(() => server.network.peers.length === 0, 5000, "the link closed at the server");
    clock.advance(1); // the ping's slot: the link is closed, nothing goes
    clock.advance(5000); // the gets time out
    await waitUntil(() => server.sync.progress.completed >= 1, 5000, "the catch-up to end");
    const { keysListed, keysFetched } = server.syncProgress;
    assert.equal(fake.gets, 1);
    assert.deepEqual({ keysListed, keysFetched }, { keysListed: 6, keysFetched: 1 }, "only the get that went out counted (before: all 6)");
  });
});

/** A get the fake legacy server was sent. */
interface LegacyGet {
  id: string;
  key: string;
}

/**
 * A fake tool-db 2.6.6 server on a raw link from `from`: a ping with no
 * nonce that says it is a server (an unproven legacy link gets the legacy
 * catch-up), answering the query for all keys with `keys` (after `onQuery`)
 * and each get with `answer`. `gets` counts the gets it was sent.
 */
async function legacyServer(server: ToolDb, from: string, keys: string[], answer: (get: LegacyGet, link: RawLink) => unknown, id?: RawIdentity, onQuery?: (link: RawLink) => void): Promise<{ link: RawLink; readonly gets: number }> {
  const link = await RawLink.open(portOf(server), { topic: "test", from, id: id ?? (await rawIdentity()) });
  const state = { link, gets: 0 };
  const listed = new Promise<void>((resolve) =>
    link.ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type: string; id: string; key: string };
      if (frame.type === "get") {
        state.gets++;
        void answer({ id: frame.id, key: frame.key }, link);
      }
      if (frame.type !== "query") return;
      onQuery?.(link);
      link.send({ type: "queryAck", id: frame.id, to: [], keys });
      resolve();
    }),
  );
  const pong = link.next((f) => f.type === "pong", T);
  link.send({ ...(await link.ping()), isServer: true });
  await pong;
  await listed;
  return state;
}
