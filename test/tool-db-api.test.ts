/**
 * The tool-db 2.6.6 names we support (docs/tool-db-api.md), each called the
 * same way on tool-db 2.6.6 and on tooldb-dht, results compared.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import t from "tool-db";
import * as ours from "../src/index.js";
import * as utils from "../src/utils/index.js";
import type { EcdsaUser } from "../src/index.js";
import { closeAll, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { startLegacyNode, type LegacyNode } from "./interop/legacy-node.js";

const text = ["", "hello", "ünïcødé ✓ 𝄞", JSON.stringify({ a: [1, 2], b: "x" })];

describe("tool-db 2.6.6 utilities, same call on both", () => {
  it("sha256, sha1, proofOfWork give the same results", async () => {
    for (const s of text) {
      assert.equal(ours.sha256(s), t.sha256(s));
      assert.equal(ours.sha1(s), t.sha1(s));
    }
    for (const difficulty of [null, 0, 1, 2]) {
      assert.deepEqual(await ours.proofOfWork("prefix", difficulty), await t.proofOfWork("prefix", difficulty));
    }
  });

  it("every helper of the root is in tooldb-dht/utils too, as docs/api.md says (proofOfWork was missing)", () => {
    const names = ["sha256", "sha1", "proofOfWork", "textRandom", "uniq", "toBase64", "fromBase64", "stringToArrayBuffer", "arrayBufferToHex", "hexToArrayBuffer", "uint8ToBase64", "base64ToUint8"];
    for (const name of names) {
      assert.equal(typeof (utils as Record<string, unknown>)[name], "function", `tooldb-dht/utils lacks ${name}`);
      assert.equal((utils as Record<string, unknown>)[name], (ours as Record<string, unknown>)[name], name);
    }
  });

  it("encoding helpers round-trip and match", () => {
    for (const s of text) {
      assert.equal(ours.toBase64(s), t.toBase64(s));
      assert.equal(ours.fromBase64(t.toBase64(s)), s);
      assert.deepEqual(new Uint8Array(ours.stringToArrayBuffer(s)), new Uint8Array(t.stringToArrayBuffer(s)));
      assert.equal(ours.arrayBufferToString(t.stringToArrayBuffer(s)), t.arrayBufferToString(t.stringToArrayBuffer(s)));
      const hex = t.arrayBufferToHex(t.stringToArrayBuffer(s));
      assert.equal(ours.arrayBufferToHex(ours.stringToArrayBuffer(s)), hex);
      assert.deepEqual(new Uint8Array(ours.hexToArrayBuffer(hex)), new Uint8Array(t.hexToArrayBuffer(hex)));
      assert.deepEqual(ours.hexToUint8(hex), t.hexToUint8(hex));
      assert.equal(ours.hexToString(hex), t.hexToString(hex));
    }
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.equal(ours.uint8ToBase64(bytes), t.uint8ToBase64(bytes));
    assert.deepEqual(ours.base64ToUint8(t.uint8ToBase64(bytes)), t.base64ToUint8(t.uint8ToBase64(bytes)));
    assert.deepEqual(ours.uniq([3, 1, 3, 2, 1]), t.uniq([3, 1, 3, 2, 1]));
    assert.equal(ours.catchReturn(new Error("x")), t.catchReturn(new Error("x")));
  });

  it("random helpers have 2.6.6's shapes", () => {
    assert.equal(ours.textRandom().length, t.textRandom().length);
    assert.equal(ours.textRandom(10).length, 10);
    assert.match(ours.textRandom(16, "ab"), /^[ab]{16}$/);
    assert.match(ours.generateGroupKey(), /^[0-9a-f]{64}$/);
    assert.equal(ours.generateGroupKey().length, t.generateGroupKey().length);
    assert.equal(typeof ours.randomAnimal(), "string");
  });
});

describe("tool-db 2.6.6 node members, same call on both", () => {
  it("getUserNamespacedKey, userAccount.setUser/getAddress/getUsername with the same key pair", async () => {
    const legacy = await startLegacyNode(`api-${process.pid}`);
    const db = await startServer();
    try {
      await db.anonSignIn();
      const keys = await db.userAccount.exportKeys();
      // 2.6.6's keysSignIn cannot run with @tool-db/ecdsa-user (its getAccountFromPrivate is the base stub): set the pair directly.
      await legacy.db.userAccount.setUser({ name: "alice", pub: keys.pub, priv: keys.priv }, "alice");
      await db.userAccount.setUser(keys, "alice");
      assert.equal(db.userAccount.getAddress(), legacy.db.userAccount.getAddress());
      assert.equal(db.userAccount.getUsername(), legacy.db.userAccount.getUsername());
      assert.equal(db.getUserNamespacedKey("profile"), legacy.db.getUserNamespacedKey("profile"));
      const theirs = await (legacy.db.userAccount as unknown as { getPublic(): Promise<string> }).getPublic();
      assert.equal(await (db.userAccount as EcdsaUser).getPublic(), theirs);
      assert.match(theirs, /^[0-9a-f]{128}$/);
    } finally {
      await legacy.close();
      await db.close();
    }
  });

  it("getPeerSignature: a peer record signed with ours passes 2.6.6's signature check and ours, and 2.6.6's passes ours", async () => {
    const legacy = await startLegacyNode(`peer-sig-${process.pid}`);
    const db = await startServer();
    try {
      const timestamp = Date.now();
      const record = { topic: "test", timestamp, host: "127.0.0.1", port: 1234, address: db.nodeAddress() };
      const sig = await ours.getPeerSignature(db.peerAccount, record.topic, timestamp, record.host, record.port);
      assert.equal(await db.checkPeerRecord({ ...record, sig }), null);
      const h = t.sha256(`${record.topic}-${timestamp}-${record.host}:${record.port}`);
      assert.equal(await legacy.db.userAccount.verifySignature({ h, a: record.address, s: sig }), true);
      const theirs = await t.getPeerSignature(legacy.db.peerAccount, record.topic, timestamp, record.host, record.port);
      assert.equal(await db.checkPeerRecord({ ...record, address: legacy.db.peerAccount.getAddress()!, sig: theirs }), null);
      assert.equal(await db.checkPeerRecord({ ...record, sig: theirs }), "signature", "another key's signature is refused");
    } finally {
      await legacy.close();
      await db.close();
    }
  });

  it("addIdListener gets the reply with that id once; removeIdListener stops it", async () => {
    const server = await startServer();
    const client = await startClient([server]);
    try {
      await server.anonSignIn();
      await server.putData("k", 1);
      const replies: ours.ToolDbMessage[] = [];
      const got = new Promise<void>((resolve) =>
        client.addIdListener("id-1", (m) => {
          replies.push(m);
          resolve();
        }),
      );
      client.network.sendToAll({ type: "get", id: "id-1", key: "k" });
      await got;
      assert.equal(replies[0]?.type, "put");
      client.addIdListener("id-2", () => assert.fail("removed listener called"));
      client.removeIdListener("id-2");
      client.network.sendToAll({ type: "get", id: "id-2", key: "k" });
      assert.equal(replies.length, 1);
    } finally {
      await closeAll(client, server);
    }
  });
});

/** The members both implementations share, called by name: the scenario below runs unchanged on either. */
interface Node {
  putData(key: string, value: unknown, userNamespaced?: boolean): Promise<unknown>;
  getData(key: string, userNamespaced?: boolean, timeoutMs?: number): Promise<unknown>;
  queryKeys(key: string, userNamespaced?: boolean, timeoutMs?: number): Promise<string[] | null>;
  addServerFunction(name: string, fn: (args: any) => Promise<unknown>): void;
  doFunction(name: string, args: unknown, timeoutMs?: number): Promise<unknown>;
  addKeyListener(key: string, fn: (msg: { v: unknown }) => void): number;
  removeKeyListener(id: number): void;
  addCustomVerification(key: string, fn: (msg: { v: any }, previous: unknown) => Promise<boolean>): number;
  removeCustomVerification(id: number): void;
  getUserNamespacedKey(key: string): string;
  anonSignIn(): Promise<unknown>;
}

/** One app's calls against a server and two clients; returns what it saw. */
async function scenario(server: Node, writer: Node, reader: Node): Promise<unknown> {
  const seen: unknown[] = [];
  const stored = (key: string, ns = false) => waitUntil(async () => (await reader.getData(key, ns, 200)) !== null, 10_000, `${key} on the server`);
  await writer.anonSignIn();
  const listener = server.addKeyListener("note-1", (msg) => seen.push(msg.v));
  // A node's own write does not reach its own key listeners (2.6.6 fires them for incoming puts only);
  // read at the end, well past 2.6.6's 100 ms debounce.
  const ownHeard: unknown[] = [];
  writer.addKeyListener("own-1", (msg) => ownHeard.push(msg.v));
  await writer.putData("own-1", "mine");
  const verifier = server.addCustomVerification("note-", async (msg) => msg.v?.banned !== true);
  await writer.putData("note-1", { text: "hello" });
  await stored("note-1");
  await writer.putData("note-2", { text: "second" });
  await stored("note-2");
  await writer.putData("note-3", { banned: true });
  await writer.putData("marker", 1);
  await stored("marker");
  // What the writer sent before the marker was handled (one ordered link): the refused record is not there.
  const banned = await reader.getData("note-3", false, 500);
  server.removeKeyListener(listener);
  server.removeCustomVerification(verifier);
  await writer.putData("note-1", { text: "not heard" });
  await waitUntil(async () => ((await reader.getData("note-1", false, 200)) as { text?: string } | null)?.text === "not heard", 10_000, "the update on the server");
  await writer.putData("mine", "private", true);
  const namespaced = writer.getUserNamespacedKey("mine");
  await waitUntil(async () => (await reader.getData(namespaced, false, 200)) !== null, 10_000, "namespaced key on the server");
  server.addServerFunction("add", async (args: { a: number; b: number }) => args.a + args.b);
  return {
    got: await reader.getData("note-1", false, 500),
    banned,
    keys: ((await reader.queryKeys("note-", false, 300)) ?? []).sort(),
    namespaced: [namespaced.startsWith(":") && namespaced.endsWith(".mine"), await reader.getData(namespaced, false, 500)],
    listener: seen,
    ownHeard,
    fn: await reader.doFunction("add", { a: 2, b: 3 }, 2000),
    missing: await reader.doFunction("nope", {}, 2000),
  };
}

describe("the same app code on tool-db 2.6.6 and on tooldb-dht", () => {
  it("putData/getData, queryKeys, key listeners, custom verification, namespaced keys and server functions give the same results", async () => {
    const legacy: LegacyNode[] = [];
    const ours = [await startServer()];
    try {
      const legacyServer = await startLegacyNode(`same-${process.pid}`, { server: true });
      legacy.push(legacyServer);
      const peers = [{ host: "127.0.0.1", port: legacyServer.net.port! }];
      legacy.push(await startLegacyNode(`same-${process.pid}`, { peers }));
      legacy.push(await startLegacyNode(`same-${process.pid}`, { peers }));
      ours.push(await startClient([ours[0]!]), await startClient([ours[0]!]));
      const [ls, lw, lr] = legacy.map((n) => n.db as unknown as Node) as [Node, Node, Node];
      const [os, ow, or] = ours as unknown as [Node, Node, Node];
      const theirs = await scenario(ls, lw, lr);
      const mine = await scenario(os, ow, or);
      assert.deepEqual(mine, theirs);
      assert.deepEqual((theirs as { fn: unknown }).fn, { code: "OK", return: 5 });
    } finally {
      await closeAll(...ours);
      for (const n of legacy) await n.close();
    }
  });

  it("VerifyResult values, CRDT type names and verifyMessage on a 2.6.6 record agree", async () => {
    for (const [name, value] of Object.entries(t.VerifyResult)) assert.equal((ours.VerifyResult as Record<string, string>)[name], value, name);
    assert.deepEqual([ours.CRDT_MAP, ours.CRDT_LIST, ours.CRDT_COUNTER], [t.CRDT_MAP, t.CRDT_LIST, t.CRDT_COUNTER]);
    const legacy = await startLegacyNode(`verify-${process.pid}`);
    const db = await startServer({ legacyRecords: true });
    try {
      const sent = new Promise<ours.ToolDbRecord>((resolve) => legacy.db.network.sendToAll = ((m: { data: ours.ToolDbRecord }) => resolve(m.data)) as never);
      await legacy.db.putData("k", { v: 1 });
      const record = await sent;
      assert.equal(await legacy.db.verifyMessage(record, 0), t.VerifyResult.Verified);
      assert.equal((await db.verifier.verify(record)).result, ours.VerifyResult.Verified);
      const forged = { ...record, v: { v: 2 } };
      // 2.6.6 at pow 0 checks only the signature over h, so it accepts the forgery; we recompute h.
      assert.equal(await legacy.db.verifyMessage(forged, 0), t.VerifyResult.Verified);
      assert.equal((await db.verifier.verify(forged)).result, ours.VerifyResult.InvalidHashNonce);
    } finally {
      await legacy.close();
      await db.close();
    }
  });
});
