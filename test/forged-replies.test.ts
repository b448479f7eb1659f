/**
 * Replies are checked against their requests (issue 16, attack 1). A get's
 * reply is matched by message id on the wire; a peer answered gets with its
 * own validly signed record for a key of its own, and the asker took that as
 * the value of the key it asked for, directly and through a server that
 * forwarded the get. The attacker here is a modified server (a real ToolDb
 * whose message handler answers every get with its own record): it is now
 * refused with a strike, the get resolves with the real value (or null),
 * and forwarded gets go only to proven servers. A get linked to several
 * servers waits a short grace after the first reply and returns the newest.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import { ErrorCode } from "../src/base/errors.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { signRecord } from "../src/node/record-signer.js";
import type { ToolDbMessage } from "../src/records/messages.js";
import type { ToolDbRecord } from "../src/records/record.js";
import { closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { testAuthor } from "./helpers/signed-records.js";
import type { RefusalEvent } from "../src/network/network-host.js";

const T = 5000;

/** A record the attacker signed for a key of its own: valid, just not what was asked for. */
async function attackerRecord(value: string): Promise<ToolDbRecord> {
  return signRecord(await testAuthor(), "attacker-key", value, Date.now(), 0, false);
}

/** Turns a real server into a liar: every get (forwarded or not) is answered at once with `record`. */
function answerEveryGetWith(server: ToolDb, record: ToolDbRecord): { gets: number } {
  const seen = { gets: 0 };
  const honest = server.handleMessage.bind(server);
  server.handleMessage = (message: ToolDbMessage, from: PeerSession) => {
    if (message.type !== "get") return honest(message, from);
    seen.gets++;
    from.send({ type: "put", id: message.id, data: record });
  };
  return seen;
}

/** Delays a server's handling of gets by `ms` (a slower server). */
function slowGets(server: ToolDb, ms: number): void {
  const honest = server.handleMessage.bind(server);
  server.handleMessage = (message: ToolDbMessage, from: PeerSession) => {
    if (message.type !== "get") return honest(message, from);
    return new Promise<void>((resolve) => setTimeout(resolve, ms)).then(() => honest(message, from));
  };
}

function refusals(node: ToolDb): RefusalEvent[] {
  const seen: RefusalEvent[] = [];
  node.on("refused", (e) => seen.push(e));
  return seen;
}

const forAnotherKey = (e: RefusalEvent) => e.code === ErrorCode.BAD_MESSAGE && /record for another key/.test(e.reason);

/** Links server `a` to `b` and waits until each holds the other as a proven server. */
async function linkProven(a: ToolDb, b: ToolDb): Promise<void> {
  a.network.connectTo("127.0.0.1", portOf(b));
  await waitUntil(
    () => a.network.session(b.network.getClientAddress())?.provenServer === true && b.network.session(a.network.getClientAddress())?.provenServer === true,
    T,
    "a proven server link",
  );
}

describe("get replies are checked against the key asked for", () => {
  const nodes: ToolDb[] = [];
  const track = <N extends ToolDb>(n: N) => (nodes.push(n), n);
  afterEach(async () => {
    terminateRawLinks();
    await closeAll(...nodes.splice(0));
  });

  it("direct: a server answering with a record of another key is refused, and the client gets the real value", { timeout: 20_000 }, async () => {
    const real = track(await startServer());
    const liar = track(await startServer());
    const lie = await attackerRecord("attacker's value");
    const liarSeen = answerEveryGetWith(liar, lie);
    await real.putData("shared-key", "the real value");
    const client = track(await startClient([real, liar]));
    const refused = refusals(client);

    assert.equal(await client.getData("shared-key", false, 2000), "the real value");
    assert.ok(liarSeen.gets >= 1, "the liar was asked");
    assert.ok(refused.some(forAnotherKey), "the lie was refused as a strike");
    // A key nobody honest has: the lie never resolves it; the get times out with null.
    assert.equal(await client.getData("missing-key-1", false, 500), null);
    assert.ok(refused.filter(forAnotherKey).length >= 2);
    assert.equal((await client.records.get("shared-key"))?.v, "the real value");
  });

  it("forwarded: a proven server that lies to a forwarded get is refused, and the value comes from an honest server", { timeout: 20_000 }, async () => {
    // No catch-up between the servers: what `honest` holds reaches `front` only by a forwarded get.
    const front = track(await startServer({ serverSync: false }));
    const honest = track(await startServer({ serverSync: false }));
    const liar = track(await startServer({ serverSync: false }));
    answerEveryGetWith(liar, await attackerRecord("attacker's balance"));
    await honest.putData("bank-balance", 100);
    await linkProven(front, honest);
    await linkProven(front, liar);
    const refused = refusals(front);
    const client = track(await startClient([front]));

    assert.equal(await client.getData("bank-balance", false, 3000), 100);
    assert.equal(await client.getData("missing-key-1", false, 3500), null, "no honest server has it: null, never the lie");
    assert.ok(refused.some(forAnotherKey), "the front server counted the lie against the liar");
    assert.equal((await front.records.get("bank-balance"))?.v, 100);
  });

  it("forwarded gets go only to proven servers: a peer that only says it is a server is never asked", { timeout: 20_000 }, async () => {
    const front = track(await startServer());
    const claimer = await RawLink.open(portOf(front), { topic: "test" });
    claimer.send({ ...(await claimer.ping()), isServer: true });
    await claimer.next((f) => f.type === "pong");
    await waitUntil(() => front.network.session(claimer.id.clientId)?.isServer === true, T, "the self-declared server's session");
    assert.equal(front.network.session(claimer.id.clientId)!.provenServer, false);
    // A proven server is linked too, so forwarding does happen.
    const other = track(await startServer());
    await linkProven(front, other);
    let forwardedToOther = 0;
    const honest = other.handleMessage.bind(other);
    other.handleMessage = (message: ToolDbMessage, from: PeerSession) => {
      if (message.type === "get" && message.key === "nowhere") forwardedToOther++;
      return honest(message, from);
    };
    const client = track(await startClient([front]));
    assert.equal(await client.getData("nowhere", false, 1000), null);
    assert.equal(forwardedToOther, 1, "the proven server got the forwarded get");
    assert.ok(!claimer.frames.some((f) => f.type === "get"), "the self-declared server got none");
  });

  it("several servers: the get waits a grace after the first reply and returns the newest record", { timeout: 20_000 }, async () => {
    const stale = track(await startServer());
    const fresh = track(await startServer());
    const author = await testAuthor();
    const t = Date.now();
    await stale.records.merge(await signRecord(author, "price", "old", t - 60_000, 0, false));
    await fresh.records.merge(await signRecord(author, "price", "new", t, 0, false));
    slowGets(fresh, 100); // the stale server answers first
    const client = track(await startClient([stale, fresh], { getGraceMs: 2000 }));
    assert.equal(await client.getData("price", false, 3000), "new");
  });
});
