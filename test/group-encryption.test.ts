/**
 * Group encryption under @tool-db/ecdsa-user 1.1.3's names, against the
 * published npm package in both directions (key pairs, shared keys, wrapped
 * group keys, messages, password helpers), and the encrypted-value helper on
 * a real server: it stores and relays only ciphertext, each member decrypts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import u from "@tool-db/ecdsa-user";
import t from "tool-db";
import {
  ErrorCode,
  type ToolDb,
  type ToolDbRecord,
  decryptWithKey,
  decryptWithPass,
  deriveSharedKey,
  encryptWithKey,
  encryptWithPass,
  generateECDHKeyPair,
  generateGroupKey,
  generateIv,
  getDecrypted,
  importAESKey,
  importECDHPrivateKey,
  importECDHPublicKey,
  isToolDbError,
  putEncrypted,
  unwrapGroupKey,
  wrapGroupKey,
} from "../src/index.js";
import { closeAll, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";

const T = 10_000;
/** Every wait inside is bounded by T; this bounds the test as a whole. */
const TEST_TIMEOUT = 120_000;
const texts = ["", "hello group", "ünïcødé ✓ 𝄞", JSON.stringify({ a: [1, 2], b: "x" }), "x".repeat(5000)];
const decryptFailed = (err: unknown) => isToolDbError(err, ErrorCode.DECRYPTION_FAILED);

describe("group encryption, byte-compatible with @tool-db/ecdsa-user 1.1.3", () => {
  it("ECDH key pairs from either side import on the other and agree on the shared key", { timeout: TEST_TIMEOUT }, async () => {
    const ours = await generateECDHKeyPair();
    const theirs = await u.generateECDHKeyPair();
    assert.match(ours.publicKey, /^[0-9a-f]+$/);
    assert.equal(ours.publicKey.length, theirs.publicKey.length, "same SPKI length");
    assert.equal(ours.privateKey.length, theirs.privateKey.length, "same PKCS8 length");
    // Our derivation encrypts, theirs decrypts, and back.
    const oursShared = await deriveSharedKey(await importECDHPrivateKey(ours.privateKey), await importECDHPublicKey(theirs.publicKey));
    const theirsShared = await u.deriveSharedKey(await u.importECDHPrivateKey(theirs.privateKey), await u.importECDHPublicKey(ours.publicKey));
    for (const text of texts) {
      assert.equal(await u.decryptWithKey(await encryptWithKey(text, oursShared), theirsShared), text);
      assert.equal(await decryptWithKey(await u.encryptWithKey(text, theirsShared), oursShared), text);
    }
  });

  it("a group key wrapped by 1.1.3 unwraps here, and one wrapped here unwraps in 1.1.3", { timeout: TEST_TIMEOUT }, async () => {
    const sender = await u.generateECDHKeyPair();
    const member = await generateECDHKeyPair();
    const groupKey = generateGroupKey();
    const wrappedThere = await u.wrapGroupKey(groupKey, sender.privateKey, member.publicKey);
    assert.equal(await unwrapGroupKey(wrappedThere, member.privateKey, sender.publicKey), groupKey);

    const ourSender = await generateECDHKeyPair();
    const theirMember = await u.generateECDHKeyPair();
    const wrappedHere = await wrapGroupKey(groupKey, ourSender.privateKey, theirMember.publicKey);
    assert.deepEqual(Object.keys(wrappedHere).sort(), Object.keys(wrappedThere).sort(), "same fields");
    assert.equal(wrappedHere.key.length, wrappedThere.key.length, "same ciphertext length");
    assert.equal(t.base64ToUint8(wrappedHere.iv).length, t.base64ToUint8(wrappedThere.iv).length, "same IV encoding");
    assert.equal(await u.unwrapGroupKey(wrappedHere, theirMember.privateKey, ourSender.publicKey), groupKey);

    // Only the member it was wrapped for can unwrap it.
    const stranger = await generateECDHKeyPair();
    await assert.rejects(unwrapGroupKey(wrappedThere, stranger.privateKey, sender.publicKey), decryptFailed);
  });

  it("messages under a group key: encrypted in one, decrypted in the other, same format", { timeout: TEST_TIMEOUT }, async () => {
    const groupKey = generateGroupKey();
    const ours = await importAESKey(groupKey);
    const theirs = await u.importAESKey(groupKey);
    for (const text of texts) {
      const here = await encryptWithKey(text, ours);
      const there = await u.encryptWithKey(text, theirs);
      assert.equal(here.ct.length, there.ct.length, "ciphertext + tag, hex");
      // tool-db's base64 of bytes varies in length (bytes >= 0x80 take two): compare what it decodes to.
      assert.equal(t.base64ToUint8(here.iv).length, 12);
      assert.equal(t.base64ToUint8(there.iv).length, 12);
      assert.equal(await u.decryptWithKey(here, theirs), text);
      assert.equal(await decryptWithKey(there, ours), text);
    }
    // A changed ciphertext or another key is refused with a stable code.
    const sealed = await encryptWithKey("secret", ours);
    const flipped = { ...sealed, ct: (sealed.ct[0] === "0" ? "1" : "0") + sealed.ct.slice(1) };
    await assert.rejects(decryptWithKey(flipped, ours), decryptFailed);
    await assert.rejects(decryptWithKey(sealed, await importAESKey(generateGroupKey())), decryptFailed);
    await assert.rejects(decryptWithKey({ iv: 1, ct: null } as never, ours), decryptFailed);
    await assert.rejects(importAESKey("not hex"), (err: unknown) => isToolDbError(err, ErrorCode.INVALID_ARGUMENT));
  });

  it("encryptWithPass / decryptWithPass match 1.1.3 byte for byte (same IV)", { timeout: TEST_TIMEOUT }, async () => {
    const iv = generateIv();
    assert.equal(iv.length, 12);
    for (const text of ["", "keys", "ünïcødé ✓"]) {
      const here = await encryptWithPass(text, "pw", iv);
      assert.equal(here, await u.encryptWithPass(text, "pw", iv), "deterministic for a fixed IV: identical");
      assert.equal(await decryptWithPass(here!, "pw", iv), text);
      assert.equal(await u.decryptWithPass(here!, "pw", iv), text);
    }
    assert.equal(await decryptWithPass((await encryptWithPass("x", "pw", iv))!, "wrong", iv), undefined, "undefined on a wrong password, as 1.1.3");
  });
});

describe("encrypted values through a server", () => {
  it("a server stores and relays only ciphertext; every member decrypts, a non-member cannot", { timeout: TEST_TIMEOUT }, async () => {
    const server = await startServer();
    const [alice, bob, carol] = await Promise.all([startClient([server]), startClient([server]), startClient([server])]);
    try {
      const secret = "meet at the old mill at nine";
      await Promise.all([alice, bob, carol].map((db) => db.anonSignIn()));
      // Each member publishes an ECDH public key under their own namespace.
      const keys = new Map<ToolDb, Awaited<ReturnType<typeof generateECDHKeyPair>>>();
      for (const db of [alice, bob]) {
        keys.set(db, await generateECDHKeyPair());
        await db.putData("ecdh", keys.get(db)!.publicKey, true);
      }
      // Alice creates the group key and wraps it for each member (herself included).
      const groupKey = generateGroupKey();
      for (const member of [alice, bob]) {
        const memberPublic = await alice.getData<string>(`:${member.userAccount.getAddress()}.ecdh`, false, T);
        assert.ok(memberPublic);
        await alice.putData(`group-g1-${member.userAccount.getAddress()}`, await wrapGroupKey(groupKey, keys.get(alice)!.privateKey, memberPublic), true);
      }
      // Carol, not a member, listens to the chat key on the server.
      await carol.subscribeData("chat-g1");
      const relayed = waitFor(carol, "data", T, (r) => r.k === "chat-g1");
      await putEncrypted(alice, "chat-g1", { text: secret, from: "alice" }, groupKey);

      const [toCarol] = (await relayed) as [ToolDbRecord];
      await waitUntil(async () => (await server.records.get("chat-g1")) !== undefined, T, "the message on the server");
      const stored = await server.records.get("chat-g1");
      for (const record of [stored!, toCarol]) {
        assert.deepEqual(Object.keys(record.v as object).sort(), ["ct", "iv"]);
        assert.ok(!JSON.stringify(record).includes("old mill"), "no plaintext in what the server holds or sends");
      }
      // Bob unwraps his copy of the group key with Alice's published public key, then reads.
      const wrapped = await bob.getData<{ iv: string; key: string }>(`:${alice.userAccount.getAddress()}.group-g1-${bob.userAccount.getAddress()}`, false, T);
      const alicePublic = await bob.getData<string>(`:${alice.userAccount.getAddress()}.ecdh`, false, T);
      const bobsKey = await unwrapGroupKey(wrapped!, keys.get(bob)!.privateKey, alicePublic!);
      assert.equal(bobsKey, groupKey);
      assert.deepEqual(await getDecrypted(bob, "chat-g1", bobsKey, false, T), { text: secret, from: "alice" });
      assert.deepEqual(await getDecrypted(alice, "chat-g1", groupKey), { text: secret, from: "alice" });
      // The record is readable by 1.1.3 code as well: decryptWithKey + JSON.parse.
      assert.deepEqual(JSON.parse(await u.decryptWithKey(stored!.v as never, await u.importAESKey(groupKey))), { text: secret, from: "alice" });
      // Carol has the ciphertext but not the key.
      await assert.rejects(getDecrypted(carol, "chat-g1", generateGroupKey()), decryptFailed);
      assert.equal(await getDecrypted(bob, "no-such-chat", bobsKey, false, 200), null);
    } finally {
      await closeAll(alice, bob, carol, server);
    }
  });
});
