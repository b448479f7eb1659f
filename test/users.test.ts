import { describe, it } from "node:test";
import assert from "node:assert/strict";
import ecdsaUserModule from "@tool-db/ecdsa-user";
import { EcdsaUser, type UserKeys } from "../src/users/index.js";
import { userAdapterSuite } from "./compliance/user-suite.js";
import { importAddress, verifyWithAddress } from "../src/crypto/ecdsa.js";

userAdapterSuite("EcdsaUser", { create: () => new EcdsaUser() });

/** The reference implementation: @tool-db/ecdsa-user 1.1.3 (CommonJS, default export). */
const ToolDbEcdsaUser = ecdsaUserModule.default;
type ToolDbLike = ConstructorParameters<typeof ToolDbEcdsaUser>[0];
const fakeToolDb = { logger() {}, options: {} } as unknown as ToolDbLike;

/**
 * Their constructor starts `anonUser()` without exposing the promise; if we
 * called setUser before it settled, the late anonymous keys would win. Capture
 * that first call so tests can wait for it without sleeping.
 */
const initialKeyPair = new WeakMap<object, Promise<void>>();
class TheirUser extends ToolDbEcdsaUser {
  override anonUser(): Promise<void> {
    const pending = super.anonUser();
    if (!initialKeyPair.has(this)) initialKeyPair.set(this, pending);
    return pending;
  }
}

async function theirUser(): Promise<TheirUser> {
  const user = new TheirUser(fakeToolDb);
  await initialKeyPair.get(user);
  return user;
}

async function ourUser(): Promise<EcdsaUser> {
  const user = new EcdsaUser();
  await user.ready;
  return user;
}

const PASSWORD = "correct horse battery staple";
/** ToolDb signs the hex SHA-256 of a record. */
const HASH = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const NON_ASCII = "héllo wörld · 日本語 🎉";

describe("EcdsaUser interop with @tool-db/ecdsa-user 1.1.3", () => {
  describe("keys and addresses", () => {
    it("the same keys give the same address in both", async () => {
      const ours = await ourUser();
      const keys = await ours.decryptAccount(await ours.encryptAccount(PASSWORD), PASSWORD);
      const theirs = await theirUser();
      await theirs.setUser({ ...keys, name: "same" }, "same");
      assert.equal(theirs.getAddress(), ours.getAddress());
    });

    it("addresses have their shape: 86 base64url characters", async () => {
      const [ours, theirs] = await Promise.all([ourUser(), theirUser()]);
      assert.match(theirs.getAddress()!, /^[A-Za-z0-9_-]{86}$/);
      assert.match(ours.getAddress()!, /^[A-Za-z0-9_-]{86}$/);
    });

    it("our getAccountFromPrivate(their priv) gives their pub", async () => {
      const theirs = await theirUser();
      const keys: UserKeys = await theirs.decryptAccount(await theirs.encryptAccount(PASSWORD), PASSWORD);
      const derived = await (await ourUser()).getAccountFromPrivate(keys.priv);
      assert.equal(derived.pub, keys.pub);
    });
  });

  describe("signatures", () => {
    it("a signature by theirs over a record hash verifies with ours", async () => {
      const theirs = await theirUser();
      const s = await theirs.signData(HASH);
      assert.equal(await (await ourUser()).verifySignature({ h: HASH, a: theirs.getAddress()!, s }), true);
    });

    it("a signature by ours over a record hash verifies with theirs", async () => {
      const ours = await ourUser();
      const s = await ours.signData(HASH);
      assert.equal(await (await theirUser()).verifySignature({ h: HASH, a: ours.getAddress()!, s }), true);
    });

    it("signatures have their format: 128 hex characters (IEEE P1363 r||s)", async () => {
      const [ours, theirs] = await Promise.all([ourUser(), theirUser()]);
      assert.match(await theirs.signData(HASH), /^[0-9a-f]{128}$/);
      assert.match(await ours.signData(HASH), /^[0-9a-f]{128}$/);
    });

    it("a signature by theirs over non-ASCII text verifies with ours", async () => {
      const theirs = await theirUser();
      const s = await theirs.signData(NON_ASCII);
      assert.equal(await (await ourUser()).verifySignature({ h: NON_ASCII, a: theirs.getAddress()!, s }), true);
    });

    it("a signature by ours over non-ASCII text verifies with theirs", async () => {
      const ours = await ourUser();
      const s = await ours.signData(NON_ASCII);
      assert.equal(await (await theirUser()).verifySignature({ h: NON_ASCII, a: ours.getAddress()!, s }), true);
    });

    it("a tampered signature by theirs is refused by ours", async () => {
      const theirs = await theirUser();
      const s = await theirs.signData(HASH);
      const tampered = (s[0] === "0" ? "1" : "0") + s.slice(1);
      assert.equal(await (await ourUser()).verifySignature({ h: HASH, a: theirs.getAddress()!, s: tampered }), false);
    });
  });

  describe("encrypted accounts", () => {
    it("an account encrypted by theirs decrypts with ours and gives the same address", async () => {
      const theirs = await theirUser();
      const account = await theirs.encryptAccount(PASSWORD);
      const ours = await ourUser();
      const keys = await ours.decryptAccount(account, PASSWORD);
      await ours.setUser(keys, account.name);
      assert.equal(ours.getAddress(), theirs.getAddress());
    });

    it("an account encrypted by ours decrypts with theirs and gives the same address", async () => {
      const ours = await ourUser();
      const account = await ours.encryptAccount(PASSWORD);
      const theirs = await theirUser();
      const keys = await theirs.decryptAccount(account, PASSWORD);
      await theirs.setUser(keys, account.name);
      assert.equal(theirs.getAddress(), ours.getAddress());
    });

    it("an account encrypted by theirs with a non-ASCII password decrypts with ours", async () => {
      const password = "pässwörd 🔑";
      const theirs = await theirUser();
      const ours = await ourUser();
      const keys = await ours.decryptAccount(await theirs.encryptAccount(password), password);
      await ours.setUser(keys, "u");
      assert.equal(ours.getAddress(), theirs.getAddress());
    });

    it("an account by theirs opened with a wrong password rejects with WRONG_PASSWORD", async () => {
      const account = await (await theirUser()).encryptAccount(PASSWORD);
      await assert.rejects((await ourUser()).decryptAccount(account, "wrong"), { code: "WRONG_PASSWORD" });
    });
  });
});

describe("imported public keys", () => {
  it("an address's key is cached only from its second use (a one-off handshake key holds no native memory after it); verification is the same either way", async () => {
    const user = new EcdsaUser();
    await user.ready;
    const address = user.getAddress()!;
    const first = importAddress(address);
    const second = importAddress(address);
    assert.notEqual(first, second, "first use: imported, not cached");
    assert.equal(importAddress(address), second, "second use on: the cached key");
    assert.ok(await first);
    const signature = await user.signData("idle");
    assert.equal(await verifyWithAddress("idle", signature, address), true);
    assert.equal(await verifyWithAddress("idle!", signature, address), false);
    const other = new EcdsaUser();
    await other.ready;
    assert.equal(await verifyWithAddress("idle", signature, other.getAddress()!), false, "a first-use key verifies too");
  });
});
