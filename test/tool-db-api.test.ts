/**
 * The tool-db 2.6.6 names we support (docs/tool-db-api.md), each called the
 * same way on tool-db 2.6.6 and on tooldb-dht, results compared.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import t from "tool-db";
import * as ours from "../src/index.js";
import { closeAll, startClient, startServer } from "./helpers/nodes.js";
import { startLegacyNode } from "./interop/legacy-node.js";

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
