/**
 * Public calls an outside check (docs audit) found answering a wrong or
 * missing argument with a TypeError from deep inside, or a closed node with
 * "Not connected": each is now a ToolDbError with a stable code and a
 * message naming the argument, thrown where the mistake is made (a bad key
 * listener threw nothing until the first change reached it), and never an
 * unhandled rejection.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import {
  ErrorCode,
  ToolDb,
  decryptWithKey,
  deriveSharedKey,
  encryptWithKey,
  generateECDHKeyPair,
  generateGroupKey,
  getDecrypted,
  importAESKey,
  importECDHPrivateKey,
  importECDHPublicKey,
  putEncrypted,
} from "../src/index.js";
import DC, { DHTClient, DHTServer } from "../src/entries/discovery.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";
import { signedInNode, typed } from "./helpers/typed-error.js";

const unhandled = collectUnhandledRejections();


/** Calls as JavaScript callers make them, past the types. */
const loose = <T>(value: T) => value as unknown as Record<string, (...args: unknown[]) => unknown>;

describe("constructors given something other than options", { timeout: 30_000 }, () => {
  afterEach(() => assert.deepEqual(unhandled.splice(0), [], "unhandled rejections"));

  it("new ToolDb(a string, a number, an array) is INVALID_ARGUMENT; null is no options, as in tool-db 2.6.6", async () => {
    const Loose = ToolDb as unknown as new (options: unknown) => ToolDb;
    for (const options of ["my-app-v1", 5, [{ topic: "x" }]]) {
      assert.throws(() => new Loose(options), typed(ErrorCode.INVALID_ARGUMENT, /^option options must be an object, got /), JSON.stringify(options));
    }
    const db = new Loose(null);
    try {
      await db.ready;
      assert.equal(db.options.topic, "tool-db-default");
    } finally {
      await db.close();
    }
  });

  it("new DHTClient(topic, null) and new DHTServer(topic, host, port, null) are INVALID_ARGUMENT (DHTClient was a TypeError)", () => {
    const Client = DHTClient as unknown as new (topic: string, options: unknown) => DHTClient;
    const Server = DHTServer as unknown as new (topic: string, host: string, port: number, options: unknown) => DHTServer;
    assert.throws(() => new Client("bad-calls", null), typed(ErrorCode.INVALID_ARGUMENT, /option options must be an object, got null/));
    assert.throws(() => new Server("bad-calls", "127.0.0.1", 0, null), typed(ErrorCode.INVALID_ARGUMENT, /option options must be an object, got null/));
  });

  it("DC({ host: 5 }) is INVALID_ARGUMENT naming host (it was Node's TypeError from the UDP bind)", () => {
    assert.throws(() => DC({ host: 5 as never, bootstrap: false }), typed(ErrorCode.INVALID_ARGUMENT, /^host must be a non-empty string \(the DHT socket's bind address\), got number 5$/));
  });
});

describe("listeners, encryption helpers and a closed node", { timeout: 30_000 }, () => {
  let db: ToolDb;
  before(async () => {
    db = await signedInNode("bad-calls");
  });
  after(() => db.close());
  afterEach(() => assert.deepEqual(unhandled.splice(0), [], "unhandled rejections"));

  it("addKeyListener, addCustomVerification and addIdListener refuse what they could never call, at once", () => {
    // Before: registered, and the first change of the key (or the first record under the prefix) hit a TypeError.
    assert.throws(() => loose(db).addKeyListener!.call(db, "k", "not a function"), typed(ErrorCode.INVALID_ARGUMENT, /^fn must be a function, got the string "not a function"$/));
    assert.throws(() => loose(db).addKeyListener!.call(db, 42, () => undefined), typed(ErrorCode.INVALID_KEY, /^key must be a non-empty string, got number 42$/));
    assert.throws(() => loose(db).addCustomVerification!.call(db, "k", 5), typed(ErrorCode.INVALID_ARGUMENT, /^fn must be a function, got number 5$/));
    assert.throws(() => loose(db).addCustomVerification!.call(db, null, async () => true), typed(ErrorCode.INVALID_ARGUMENT, /^keyPrefix must be a string, got null$/));
    assert.throws(() => loose(db).addIdListener!.call(db, "id", 5), typed(ErrorCode.INVALID_ARGUMENT, /^fn must be a function, got number 5$/));
    assert.throws(() => loose(db).addIdListener!.call(db, "id", () => undefined, "soon"), typed(ErrorCode.INVALID_ARGUMENT, /^timeoutMs must be a finite number of ms >= 0/));
    // Good calls still register: a dotted key (a namespaced one) may be listened to, an empty prefix covers every key.
    db.removeKeyListener(db.addKeyListener(":addr.key", () => undefined));
    db.removeCustomVerification(db.addCustomVerification("", async () => true));
  });

  it("encryptWithKey, decryptWithKey and deriveSharedKey name a key that is not a CryptoKey (encryptWithKey threw WebCrypto's TypeError)", async () => {
    const hex = generateGroupKey();
    await assert.rejects(encryptWithKey("secret", hex as never), typed(ErrorCode.INVALID_ARGUMENT, /^the key must be a CryptoKey \(a hex key: importAESKey\(hex\) first\), got the string/));
    await assert.rejects(encryptWithKey(5 as never, await importAESKey(hex)), typed(ErrorCode.INVALID_ARGUMENT, /^the message must be a string, got number 5$/));
    const sealed = await encryptWithKey("secret", await importAESKey(hex));
    // Before: DECRYPTION_FAILED "wrong key or damaged ciphertext", which sends one looking for another key.
    await assert.rejects(decryptWithKey(sealed, hex as never), typed(ErrorCode.INVALID_ARGUMENT, /^the key must be a CryptoKey/));
    assert.equal(await decryptWithKey(sealed, await importAESKey(hex)), "secret");
    const [a, b] = await Promise.all([generateECDHKeyPair(), generateECDHKeyPair()]);
    await assert.rejects(deriveSharedKey(a.privateKey as never, await importECDHPublicKey(b.publicKey)), typed(ErrorCode.INVALID_ARGUMENT, /^our private key \(importECDHPrivateKey\) must be a CryptoKey/));
    await assert.rejects(deriveSharedKey(await importECDHPrivateKey(a.privateKey), null as never), typed(ErrorCode.INVALID_ARGUMENT, /^their public key \(importECDHPublicKey\) must be a CryptoKey, got null$/));
  });

  it("putEncrypted and getDecrypted without a node are INVALID_ARGUMENT (they were TypeErrors)", async () => {
    const key = generateGroupKey();
    await assert.rejects(putEncrypted(undefined as never, "k", 1, key), typed(ErrorCode.INVALID_ARGUMENT, /^db must be a ToolDb \(with putData and getData\), got undefined$/));
    await assert.rejects(getDecrypted({} as never, "k", key), typed(ErrorCode.INVALID_ARGUMENT, /^db must be a ToolDb/));
    await putEncrypted(db, "sealed", { n: 1 }, key);
    assert.deepEqual(await getDecrypted(db, "sealed", key), { n: 1 });
  });

  it("network.disconnectFrom with a host that is not a string does nothing, as for any address never dialed (it threw a TypeError)", () => {
    assert.doesNotThrow(() => loose(db.network).disconnectFrom!.call(db.network, 5, 9000));
    assert.doesNotThrow(() => loose(db.network).disconnectFrom!.call(db.network, undefined, undefined));
  });

  it("doFunction on a closed node rejects with CLOSED, as putData and getData do (it answered \"Not connected\")", async () => {
    const closed = new ToolDb({ topic: "bad-calls" });
    await closed.ready;
    assert.deepEqual(await closed.doFunction("f", {}), { code: "ERR", return: "Not connected" }, "open and alone: as documented");
    await closed.close();
    await assert.rejects(closed.doFunction("f", {}), typed(ErrorCode.CLOSED, /^doFunction f: the node is closed$/));
    await assert.rejects(closed.putData("k", 1), typed(ErrorCode.CLOSED, /closed/));
  });
});
