/**
 * The handshake remembers which identities proved themselves, and refuses an
 * unproven handshake (a replayed peer record) in such a name. That memory is
 * bounded; an attacker used to flush it by proving fresh identities one after
 * another from one host, and then replay a victim's record as a 2.6.6 peer.
 * Now each address site (/24, /48) keeps at most `provenIdentitiesPerRange`
 * entries, and past the total the largest site forgets first: a flood from
 * one host, or from many sites of two identities each, cycles only its own.
 * The attacks here are real handshakes on raw WebSocket links from 127.x
 * addresses (other hosts' stand-ins).
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { GroupedBoundedSet } from "../src/base/grouped-bounded-set.js";
import { ToolDb } from "../src/index.js";
import { CloseCode } from "../src/network/connection.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { withTimeout } from "./helpers/wait.js";

const TOPIC = "proven-identities";
const T = 5000;

describe("identities that proved themselves, remembered per address site", () => {
  const nodes: ToolDb[] = [];
  afterEach(async () => {
    terminateRawLinks();
    await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "cleanup");
  });

  /** A proven handshake from `from`, then the link is closed and the server has let the session go. */
  async function proveAndLeave(srv: ToolDb, from: string, id?: RawLink["id"]): Promise<RawLink> {
    const link = await RawLink.open(portOf(srv), { topic: TOPIC, from, id });
    await link.provenHandshake();
    link.terminate();
    await waitUntil(() => srv.network.session(link.id.clientId) === undefined, T, "the server to drop the session");
    return link;
  }

  /** A server holding a record, and a victim identity proven to it from 127.0.1.2. */
  async function serverWithVictim(): Promise<{ srv: ToolDb; victim: RawLink }> {
    const srv = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: TOPIC, ...FAST, limits: { provenIdentities: 16, provenIdentitiesPerRange: 4 } });
    nodes.push(srv);
    await srv.ready;
    await srv.putData("precious", "kept");
    return { srv, victim: await proveAndLeave(srv, "127.0.1.2") };
  }

  /** The victim's record replayed without a proof, as a 2.6.6 ping, from yet another address: refused. */
  async function assertReplayRefused(srv: ToolDb, victim: RawLink): Promise<void> {
    const replay = await RawLink.open(portOf(srv), { topic: TOPIC, from: "127.0.0.6", id: victim.id });
    replay.send(await replay.ping());
    assert.equal((await replay.waitClose()).code, CloseCode.BAD_PEER);
    assert.equal(srv.network.session(victim.id.clientId), undefined);
  }

  it("a host proving many fresh identities cannot flush the others': a replay in the victim's name is still refused", { timeout: 60_000 }, async () => {
    const { srv, victim } = await serverWithVictim();
    // An identity of the attacker's own range, proven before the flood: the flood may push it out.
    const early = await proveAndLeave(srv, "127.0.0.5");
    for (let i = 0; i < 24; i++) await proveAndLeave(srv, "127.0.0.5"); // more than the whole memory holds

    await assertReplayRefused(srv, victim);

    // The flood did cycle its own range: the same replay in the early identity's name opens a legacy session.
    const cycled = await RawLink.open(portOf(srv), { topic: TOPIC, from: "127.0.0.6", id: early.id });
    await cycled.handshake();
    await waitUntil(() => srv.network.session(early.id.clientId) !== undefined, T, "the early identity's legacy session");
    assert.equal(srv.network.session(early.id.clientId)!.proven, false);

    assert.equal(await srv.getData("precious"), "kept");
  });

  it("a flood from many sites of two identities each cannot flush the others' either", { timeout: 60_000 }, async () => {
    const { srv, victim } = await serverWithVictim();
    // 12 /24s of two identities each: 24 proofs, more than the whole memory holds (with the oldest
    // entry overall going first, as before, the victim's was the first pushed out).
    for (let site = 10; site < 22; site++) for (let i = 0; i < 2; i++) await proveAndLeave(srv, `127.0.${site}.5`);

    await assertReplayRefused(srv, victim);
    assert.equal(await srv.getData("precious"), "kept");
  });

  it("the set keeps each group to its share, and past its capacity the largest group forgets first", () => {
    const set = new GroupedBoundedSet<string>(6, 2);
    set.add("v1", "honest");
    set.add("v2", "other");
    for (let i = 0; i < 1000; i++) assert.equal(set.add(`a${i}`, "attacker"), true);
    assert.ok(set.has("v1") && set.has("v2"), "the flood cycled only its own group");
    assert.deepEqual([set.has("a999"), set.has("a998"), set.has("a997")], [true, true, false]);
    assert.equal(set.size, 4);
    assert.equal(set.add("v1", "honest"), false, "already present");
    // Groups of two each, more than the capacity: past it they forget their own, never a group of one
    // (with the oldest entry overall going first, v1 and v2 went at the first two of these).
    for (let g = 0; g < 3; g++) for (let i = 0; i < 2; i++) set.add(`m${g}.${i}`, `many${g}`);
    assert.equal(set.size, 6);
    assert.ok(set.has("v1") && set.has("v2"), "the groups of one stayed");
    assert.ok(set.has("m2.1") && !set.has("a998"), "each group of two forgot its own oldest");
    // Groups of one each: past the capacity the group that reached its size first goes (so pushing
    // everyone out takes about as many groups as the capacity).
    const fresh = new GroupedBoundedSet<string>(3, 2);
    for (let g = 0; g < 5; g++) fresh.add(`g${g}`, `group${g}`);
    assert.deepEqual([0, 1, 2, 3, 4].map((g) => fresh.has(`g${g}`)), [false, false, true, true, true]);
    // A large share costs nothing until used (the limits allow up to 1,000,000 a range).
    const heapBefore = process.memoryUsage().heapUsed;
    const roomy = new GroupedBoundedSet<string>(1_000_000, 1_000_000);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 1024 * 1024, "no structure sized by perGroup up front");
    for (let i = 0; i < 5; i++) roomy.add(`r${i}`, "one");
    assert.equal(roomy.size, 5);
    // A group that hits its share forgets its own oldest, even with room overall.
    const share = new GroupedBoundedSet<string>(10, 1);
    share.add("x", "one");
    share.add("y", "one");
    assert.deepEqual([share.has("x"), share.has("y"), share.size], [false, true, 1]);
  });
});
