/**
 * What a client takes unasked: replies to its reads, keys it subscribed to
 * and newer versions of keys it holds always; any other record a peer puts
 * (a tool-db 2.6.6 server pushes its own writes to every client, a WebRTC
 * mesh replicates puts) within 1,000 new keys or 16 MiB a link, 10,000 or
 * 128 MiB in all. Past that, refused without a signature check (found by an
 * outside check: a hostile server filled a page's IndexedDB with 135 MB of
 * records it never asked for).
 */import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDb } from "../src/index.js";
import { randomId } from "../src/base/random.js";
import { closeAll, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { signedRecords, testAuthor } from "./helpers/signed-records.js";
import { signRecord } from "../src/node/record-signer.js";
import { watchSignatureChecks } from "./helpers/signature-checks.js";

const T = 30_000;
const past = () => Date.now() - 1_000_000;

describe("records a client did not ask for", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("past 1,000 a link are refused unchecked; subscribed keys, held keys and replies to reads are always stored", { timeout: T }, async () => {
    const server = await startServer();
    const client = await startClient([server]);
    nodes.push(server, client);
    const refused: RefusalEvent[] = [];
    client.on("refused", (e) => refused.push(e));
    await client.putData("mine", "v1");
    await client.subscribeData("watched");
    const toClient = server.network.peers[0]!;
    const author = await testAuthor();
    const pushed = await signedRecords(1100, "pushed/", past());
    const watched = await signRecord(author, "watched", "w", Date.now() - 1000, 0, false);
    const mine = await signRecord(author, "mine", "v2", Date.now() + 1000, 0, false);
    // Junk first: refused as any bad record is, and it costs the budget nothing (a review used junk to use it up).
    for (let i = 0; i < 5; i++) toClient.send({ type: "put", id: randomId(), to: [], data: { k: `junk-${i}` } });
    await waitUntil(() => refused.filter((e) => e.key?.startsWith("junk-")).length === 5, T, "the junk refused");
    const checks = watchSignatureChecks(client);
    for (const r of pushed) toClient.send({ type: "put", id: randomId(), to: [], data: r });
    await waitUntil(() => refused.filter((e) => e.key?.startsWith("pushed/")).length === 100, T, "the pushed records past 1,000 refused");
    await waitUntil(async () => (await client.records.get("pushed/999")) !== undefined, T, "the first 1,000 stored");
    assert.equal(checks.count, 1000, "no signature checked for the refused ones");
    assert.ok(refused.filter((e) => e.key?.startsWith("pushed/")).every((e) => e.code === ErrorCode.RECORD_REFUSED && /not asked for/.test(e.reason)));
    assert.equal(await client.store.get("pushed/1050"), undefined, "past the budget: not stored");
    assert.equal(client.network.peers.length, 1, "no strike: the link stays (a 2.6.6 server may push)");
    // What a client asked for still comes in: a subscribed key, a newer version of a key it holds, a read.
    const listened = await signRecord(author, "listened", "l", Date.now() - 1000, 0, false);
    const heard = new Promise<unknown>((resolve) => client.addKeyListener("listened", (r) => resolve(r.v)));
    toClient.send({ type: "put", id: randomId(), to: [], data: listened });
    assert.equal(await heard, "l", "a key with a listener is asked for (tool-db 2.6.6 servers push their own writes)");
    toClient.send({ type: "put", id: randomId(), to: [], data: watched });
    toClient.send({ type: "put", id: randomId(), to: [], data: mine });
    await waitUntil(async () => (await client.records.get("watched"))?.h === watched.h && (await client.records.get("mine"))?.h === mine.h, T, "the subscribed and the held key updated");
    await server.acceptRecord(pushed[1070]);
    assert.deepEqual(await client.getData("pushed/1070", false, T), pushed[1070]!.v, "a read of a key the client did not hold");
    assert.equal((await client.records.get("pushed/1070"))?.h, pushed[1070]!.h, "and the reply is stored");
  });

  it("a reply to a read carrying records of other keys is not asked for: past the budget it is refused unchecked", { timeout: T }, async () => {
    const server = await startServer();
    const client = await startClient([server]);
    nodes.push(server, client);
    const refused: RefusalEvent[] = [];
    client.on("refused", (e) => refused.push(e));
    const toClient = server.network.peers[0]!;
    const fill = await signedRecords(1000, "fill/", past());
    for (const r of fill) toClient.send({ type: "put", id: randomId(), to: [], data: r });
    await waitUntil(async () => (await client.records.get("fill/999")) !== undefined, T, "the budget used up");
    // The client's get goes out; the server answers its id with records of other keys.
    const toServer = client.network.peers[0]!;
    const sent = toServer.connection.send.bind(toServer.connection);
    let getId: string | undefined;
    toServer.connection.send = (frame: string) => {
      const m = JSON.parse(frame) as { type?: string; id?: string };
      if (m.type === "get") getId = m.id;
      sent(frame);
    };
    const read = client.getData("asked", false, 2000);
    await waitUntil(() => getId !== undefined, T, "the get sent");
    const others = await signedRecords(5, "other/", past());
    for (const r of others) toClient.send({ type: "put", id: getId!, to: [], data: r });
    await waitUntil(() => refused.filter((e) => e.key?.startsWith("other/")).length === 5, T, "the other keys refused");
    assert.ok(refused.filter((e) => e.key?.startsWith("other/")).every((e) => /not asked for/.test(e.reason)));
    for (const r of others) assert.equal(await client.store.get(r.k), undefined, `${r.k} not stored`);
    assert.equal(await read, null, "the read found nothing");
  });
});
