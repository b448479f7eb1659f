import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, EcdsaUser, ServerSelection, ToolDb, checkPeerRecord, recordUrl, signPeerRecord, urlEndpoint, type PeerRecord } from "../src/index.js";
import { FAST, closeAll, linkServers, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";
import { toolDbError } from "./compliance/storage-suite.js";

async function signer(): Promise<EcdsaUser> {
  const user = new EcdsaUser();
  await user.ready;
  return user;
}

const verify = (user: EcdsaUser) => (m: { h: string; a: string; s: string }) => user.verifySignature(m);

describe("peer records carry the URL browsers dial", () => {
  it("a signed url verifies; changing it breaks the signature; records without url verify as before", async () => {
    const user = await signer();
    const now = Date.now();
    const withUrl = await signPeerRecord(user, "t", "10.0.0.1", 9000, now, "wss://db.example.com/tooldb");
    assert.equal(withUrl.url, "wss://db.example.com/tooldb");
    assert.equal(await checkPeerRecord(withUrl, "t", verify(user), now), null);
    assert.equal(await checkPeerRecord({ ...withUrl, url: "wss://evil.example.com/" }, "t", verify(user), now), "signature");
    const { url: _dropped, ...stripped } = withUrl;
    assert.equal(await checkPeerRecord(stripped as PeerRecord, "t", verify(user), now), "signature");
    const plain = await signPeerRecord(user, "t", "10.0.0.1", 9000, now);
    assert.equal("url" in plain, false);
    assert.equal(await checkPeerRecord(plain, "t", verify(user), now), null);
  });

  it("recordUrl: the signed url, else ws://host:port for a concrete host", () => {
    const base = { host: "127.0.0.2", port: 9000 };
    assert.equal(recordUrl(base), "ws://127.0.0.2:9000");
    assert.equal(recordUrl({ ...base, url: "wss://a.example/x" }), "wss://a.example/x");
    assert.equal(recordUrl({ host: "0.0.0.0", port: 9000 }), undefined);
    assert.equal(recordUrl({ host: "::1", port: 9 }), "ws://[::1]:9");
    assert.equal(recordUrl({ ...base, url: "http://a.example/" }), undefined);
    assert.deepEqual(urlEndpoint("wss://a.example/x"), { host: "a.example", port: 443, secure: true });
    assert.deepEqual(urlEndpoint("ws://[::1]:81"), { host: "::1", port: 81, secure: false });
  });

  it("publicUrl is signed into a server's record; a URL browsers cannot dial is refused", async () => {
    const server = await startServer({ publicUrl: "wss://db.example.com/tooldb" });
    const client = await startClient([server]);
    try {
      assert.equal(client.network.peers[0]!.record.url, "wss://db.example.com/tooldb");
      for (const publicUrl of ["ws://0.0.0.0:9000", "http://db.example.com/", "wss://user:pw@db.example.com/", "not a url"]) {
        assert.throws(() => new ToolDb({ server: true, port: 0, publicUrl }), toolDbError(ErrorCode.INVALID_ARGUMENT), publicUrl);
      }
    } finally {
      await closeAll(client, server);
    }
  });
});

describe("server lists after the handshake", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("a client asks a linked server for its servers and learns one that appeared after it linked", async () => {
    const a = await startServer();
    nodes.push(a);
    const client = await startClient([a]);
    nodes.push(client);
    const b = await startServer();
    nodes.push(b);
    await linkServers(b, a);
    const learned = waitFor(client, "servers", 5000, (records) => records.some((r) => r.address === b.nodeAddress()));
    client.network.requestServers(client.network.peers[0]!);
    const [records] = await learned;
    assert.equal(recordUrl(records.find((r) => r.address === b.nodeAddress())!), `ws://127.0.0.1:${portOf(b)}`);
  });
});

describe("ServerSelection (Node transport, same logic as in browsers)", () => {
  it("from one bootstrap server: learns the others, keeps N links, replaces a dead one, picks up a new one", async () => {
    const servers = [await startServer(), await startServer(), await startServer()];
    await linkServers(servers[1]!, servers[0]!);
    await linkServers(servers[2]!, servers[0]!);
    const client = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(servers[0]!) }] });
    await client.ready;
    const selection = new ServerSelection(client, { links: 2, refreshInterval: 50, cache: false });
    const extra: ToolDb[] = [];
    const linked = () => client.network.peers.filter((p) => p.isServer).map((p) => p.address);
    try {
      await selection.ready;
      await waitUntil(() => linked().length === 2, 5000, "two server links");
      assert.equal(selection.list().length, 3);
      // Kill the bootstrap server: the client keeps two links through the servers it learned.
      await servers[0]!.close();
      await waitUntil(() => linked().length === 2 && !linked().includes(servers[0]!.nodeAddress()), 5000, "failover to the third server");
      // A fourth server joins the mesh later: the periodic refresh finds it.
      const late = await startServer();
      extra.push(late);
      await linkServers(late, servers[1]!);
      await waitUntil(() => selection.list().some((s) => s.address === late.nodeAddress()), 5000, "new server learned without restart");
    } finally {
      await selection.close();
      await closeAll(client, ...servers, ...extra);
    }
  });

  it("secureOnly (the default in https pages) never takes a ws:// server: browsers would block it as mixed content", async () => {
    const [a, b] = [await startServer(), await startServer()];
    await linkServers(b, a);
    const client = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(a) }] });
    const learned = waitFor(client, "servers", 5000, (records) => records.some((r) => r.address === b.nodeAddress()));
    await client.ready;
    const selection = new ServerSelection(client, { secureOnly: true, cache: false });
    try {
      await selection.ready;
      await learned;
      assert.deepEqual(selection.list(), []);
      assert.equal(client.network.dialTargets().length, 1, "only the db's own peer is dialed");
    } finally {
      await selection.close();
      await closeAll(client, a, b);
    }
  });
});
