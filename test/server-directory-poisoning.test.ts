/**
 * The server directory under attack: anyone may run a server and prove its
 * key, and then list made-up servers in its pongs, each validly signed by a
 * fresh key, at any address. The directory keeps 256 learned servers; it
 * used to forget the oldest first, so one lister's 256 made-up records
 * pushed out every server that others had listed, and the node then handed
 * out only the attacker's list (browsers and clients dial what they are
 * given). Now each lister site (/24, /48) keeps at most a share of it. The
 * attacker here is a raw peer with a proven handshake; the check is what the
 * victim still lists afterwards.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomId } from "../src/base/random.js";
import type { ToolDb } from "../src/index.js";
import type { PeerRecord } from "../src/records/messages.js";
import { signPeerRecord } from "../src/records/peer-record.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { portOf, startClient, waitUntil } from "./helpers/nodes.js";
import { RawLink, rawIdentity } from "./helpers/raw-peer.js";

const T = 60_000;
const TOPIC = "directory-poisoning";

/** `n` server records of as many fresh identities, at made-up ports of `host`. */
async function serverRecords(n: number, host: string): Promise<PeerRecord[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => signPeerRecord((await rawIdentity()).user, TOPIC, host, 20_000 + i, Date.now())),
  );
}

/** A proven server link from `from` that lists `records` in a pong, once the victim has checked every one of them. */
async function listServers(db: ToolDb, link: RawLink, records: PeerRecord[]): Promise<void> {
  const before = db.serverLists.checks;
  link.send(JSON.stringify({ type: "pong", id: randomId(), to: [], clientId: link.id.clientId, isServer: true, servers: records }));
  await waitUntil(() => db.serverLists.checks >= before + records.length, 20_000, "the victim to check the list");
}

describe("the server directory under a lister of made-up servers", () => {
  const fx = attackFixture(TOPIC, 30_000);

  it("a proven 'server' listing hundreds of made-up servers cannot push out the ones others listed", { timeout: T }, async () => {
    const { db } = await fx.server({ serverListInterval: 0 });
    await db.putData("before", "intact");
    const honest = await RawLink.open(portOf(db), { topic: TOPIC, from: "127.0.1.3" });
    await honest.provenHandshake({ isServer: true });
    const real = await serverRecords(8, "127.0.1.50");
    await listServers(db, honest, real);

    const attacker = await RawLink.open(portOf(db), { topic: TOPIC, from: "127.0.2.2" });
    await attacker.provenHandshake({ isServer: true });
    const madeUp = new Set<string>();
    for (let round = 0; round < 6; round++) {
      // 6 lists of 64: 384 made-up servers, more than the whole directory holds.
      const records = await serverRecords(64, "127.0.2.99");
      for (const r of records) madeUp.add(r.address);
      await listServers(db, attacker, records);
    }

    const listed = db.knownServers().map((r) => r.address);
    for (const r of real) assert.ok(listed.includes(r.address), "every server the honest lister listed is still known");
    const fromAttacker = listed.filter((a) => madeUp.has(a)).length;
    assert.ok(fromAttacker > 0 && fromAttacker <= 32, `made-up servers kept: ${fromAttacker} (a lister site's share is 32)`);

    // And what a new client is handed holds them too.
    const client = fx.track(await startClient([db], { topic: TOPIC }));
    assert.equal(await client.getData("before", false, 10_000), "intact");
    const handed = () => new Set(client.knownServers().map((r) => r.address));
    await waitUntil(() => real.every((r) => handed().has(r.address)), 20_000, "the client to learn the honest lister's servers");
  });
});
