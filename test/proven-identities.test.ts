/**
 * The handshake remembers which identities proved themselves, and refuses an
 * unproven handshake (a replayed peer record) in such a name. That memory is
 * bounded; an attacker used to flush it by proving fresh identities one after
 * another from one host, and then replay a victim's record as a 2.6.6 peer.
 * Now each address range keeps at most `provenIdentitiesPerRange` entries:
 * the attacker's flood cycles only its own range's. The attack here is real
 * handshakes on raw WebSocket links from 127.0.0.5 (another host's stand-in).
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

describe("identities that proved themselves, remembered per address range", () => {
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

  it("a host proving many fresh identities cannot flush the others': a replay in the victim's name is still refused", { timeout: 60_000 }, async () => {
    const srv = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: TOPIC, ...FAST, limits: { provenIdentities: 16, provenIdentitiesPerRange: 4 } });
    nodes.push(srv);
    await srv.ready;
    await srv.putData("precious", "kept");

    const victim = await proveAndLeave(srv, "127.0.1.2");
    // An identity of the attacker's own range, proven before the flood: the flood may push it out.
    const early = await proveAndLeave(srv, "127.0.0.5");
    for (let i = 0; i < 24; i++) await proveAndLeave(srv, "127.0.0.5"); // more than the whole memory holds

    // The victim's record replayed without a proof, as a 2.6.6 ping, from yet another address: refused.
    const replay = await RawLink.open(portOf(srv), { topic: TOPIC, from: "127.0.0.6", id: victim.id });
    replay.send(await replay.ping());
    assert.equal((await replay.waitClose()).code, CloseCode.BAD_PEER);
    assert.equal(srv.network.session(victim.id.clientId), undefined);

    // The flood did cycle its own range: the same replay in the early identity's name opens a legacy session.
    const cycled = await RawLink.open(portOf(srv), { topic: TOPIC, from: "127.0.0.6", id: early.id });
    await cycled.handshake();
    await waitUntil(() => srv.network.session(early.id.clientId) !== undefined, T, "the early identity's legacy session");
    assert.equal(srv.network.session(early.id.clientId)!.proven, false);

    assert.equal(await srv.getData("precious"), "kept");
  });

  it("the set keeps each group to its share and the whole to its capacity", () => {
    const set = new GroupedBoundedSet<string>(6, 2);
    set.add("v1", "honest");
    set.add("v2", "other");
    for (let i = 0; i < 1000; i++) assert.equal(set.add(`a${i}`, "attacker"), true);
    assert.ok(set.has("v1") && set.has("v2"), "the flood cycled only its own group");
    assert.deepEqual([set.has("a999"), set.has("a998"), set.has("a997")], [true, true, false]);
    assert.equal(set.size, 4);
    assert.equal(set.add("v1", "honest"), false, "already present");
    // Many groups of one each: past the capacity the oldest entries overall go.
    for (let g = 0; g < 10; g++) set.add(`g${g}`, `group${g}`);
    assert.equal(set.size, 6);
    assert.ok(!set.has("v1") && set.has("g9"));
  });
});
