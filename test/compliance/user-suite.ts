/**
 * Shared compliance suite for user (identity) adapters (the contract in
 * src/users/user-adapter.ts). A user adapter passes if it passes every test here:
 *
 *   import { userAdapterSuite } from "tooldb-dht/test/compliance/user-suite";
 *   userAdapterSuite("MyUser", { create: () => new MyUser() });
 *
 * The suite checks behaviour only, not key or signature formats, so any
 * signature scheme can pass; ToolDb wire compatibility is tested per adapter
 * (see test/users.test.ts for EcdsaUser against @tool-db/ecdsa-user).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, ToolDbError } from "../../src/base/errors.js";
import type { SignedHash, ToolDbUserAdapter, UserKeys } from "../../src/users/index.js";

export interface UserAdapterFactory {
  /** A new adapter, straight from its constructor (the suite awaits `ready` itself). */
  create(): Promise<ToolDbUserAdapter> | ToolDbUserAdapter;
}

/** An `assert.rejects` validator: a ToolDbError with exactly this code. */
function toolDbError(code: ErrorCode): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof ToolDbError, `expected a ToolDbError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** Changes one character of `text` at `index` to a different character of the same alphabet. */
function flipChar(text: string, index: number, alphabet: string): string {
  const current = text[index]!;
  const replacement = alphabet[(alphabet.indexOf(current) + 1) % alphabet.length]!;
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

const HEX = "0123456789abcdef";
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const PASSWORD = "correct horse battery staple";
/** A realistic signed string: ToolDb signs the hex SHA-256 of a record. */
const HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

export function userAdapterSuite(name: string, factory: UserAdapterFactory): void {
  describe(`user adapter compliance: ${name}`, () => {
    async function ready(): Promise<ToolDbUserAdapter> {
      const user = await factory.create();
      await user.ready;
      return user;
    }

    /** The adapter's current keys, obtained through the public API only. */
    async function keysOf(user: ToolDbUserAdapter): Promise<UserKeys> {
      return user.decryptAccount(await user.encryptAccount(PASSWORD), PASSWORD);
    }

    async function signed(user: ToolDbUserAdapter, data = HASH): Promise<SignedHash> {
      return { h: data, a: user.getAddress()!, s: await user.signData(data) };
    }

    describe("identity", () => {
      it("ready resolves and getAddress() is a non-empty string", async () => {
        const user = await factory.create();
        await assert.doesNotReject(user.ready);
        const address = user.getAddress();
        assert.equal(typeof address, "string");
        assert.ok(address!.length > 0);
      });

      it("two adapters get different addresses", async () => {
        const [a, b] = await Promise.all([ready(), ready()]);
        assert.notEqual(a.getAddress(), b.getAddress());
      });

      it("anonUser() changes the address", async () => {
        const user = await ready();
        const before = user.getAddress();
        await user.anonUser();
        assert.equal(typeof user.getAddress(), "string");
        assert.notEqual(user.getAddress(), before);
      });

      it("after anonUser() signatures verify against the new address", async () => {
        const user = await ready();
        const old = user.getAddress()!;
        await user.anonUser();
        const message = await signed(user);
        assert.equal(await user.verifySignature(message), true);
        assert.equal(await user.verifySignature({ ...message, a: old }), false);
      });

      it("setUser(account, name) sets the username", async () => {
        const source = await ready();
        const user = await ready();
        await user.setUser({ ...(await keysOf(source)), name: "alice" }, "alice");
        assert.equal(user.getUsername(), "alice");
      });

      it("setUser right after construction is not overridden by the initial anonymous key pair", async () => {
        const account = await keysOf(await ready());
        const expected = await ready();
        await expected.setUser(account, "x");
        const user = await factory.create();
        await user.setUser(account, "x");
        await user.ready;
        assert.equal(user.getAddress(), expected.getAddress());
      });
    });

    describe("signatures", () => {
      it("a signature verifies against the signer's address", async () => {
        const user = await ready();
        assert.equal(await user.verifySignature(await signed(user)), true);
      });

      it("verification needs no key of its own (another adapter verifies)", async () => {
        const [signer, verifier] = await Promise.all([ready(), ready()]);
        assert.equal(await verifier.verifySignature(await signed(signer)), true);
      });

      it("signatures over unicode and JSON text verify", async () => {
        const user = await ready();
        for (const data of ['{"k":"v","n":1}', "héllo wörld", "日本語 🎉", "x".repeat(10_000)]) {
          assert.equal(await user.verifySignature(await signed(user, data)), true, data.slice(0, 20));
        }
      });

      it("a tampered h does not verify", async () => {
        const user = await ready();
        const message = await signed(user);
        assert.equal(await user.verifySignature({ ...message, h: flipChar(message.h, 0, HEX) }), false);
        assert.equal(await user.verifySignature({ ...message, h: `${message.h} ` }), false);
      });

      it("a tampered s does not verify", async () => {
        const user = await ready();
        const message = await signed(user);
        for (const index of [0, Math.floor(message.s.length / 2), message.s.length - 1]) {
          const s = flipChar(message.s.toLowerCase(), index, HEX);
          assert.equal(await user.verifySignature({ ...message, s }), false, `flipped index ${index}`);
        }
      });

      it("another address does not verify", async () => {
        const [signer, other] = await Promise.all([ready(), ready()]);
        const message = await signed(signer);
        assert.equal(await signer.verifySignature({ ...message, a: other.getAddress()! }), false);
      });

      it("a signature for one h does not verify another h", async () => {
        const user = await ready();
        const first = await signed(user, "first");
        const second = await signed(user, "second");
        assert.equal(await user.verifySignature({ ...first, s: second.s }), false);
      });

      it("a failed verification does not affect later ones for the same address", async () => {
        const user = await ready();
        const message = await signed(user);
        assert.equal(await user.verifySignature({ ...message, s: flipChar(message.s.toLowerCase(), 3, HEX) }), false);
        assert.equal(await user.verifySignature(message), true);
      });
    });

    describe("verifySignature on malformed input resolves false, never rejects", () => {
      const malformed: Array<[string, (valid: SignedHash) => unknown]> = [
        ["null message", () => null],
        ["undefined message", () => undefined],
        ["empty object", () => ({})],
        ["missing h", ({ a, s }) => ({ a, s })],
        ["missing a", ({ h, s }) => ({ h, s })],
        ["missing s", ({ h, a }) => ({ h, a })],
        ["number h", (m) => ({ ...m, h: 42 })],
        ["object a", (m) => ({ ...m, a: { x: 1 } })],
        ["array s", (m) => ({ ...m, s: [m.s] })],
        ["empty signature", (m) => ({ ...m, s: "" })],
        ["non-hex signature of the right length", (m) => ({ ...m, s: "z".repeat(m.s.length) })],
        ["signature with odd length", (m) => ({ ...m, s: m.s.slice(1) })],
        ["truncated signature", (m) => ({ ...m, s: m.s.slice(0, m.s.length / 2) })],
        ["signature with extra bytes", (m) => ({ ...m, s: `${m.s}00` })],
        ["all-zero signature", (m) => ({ ...m, s: "0".repeat(m.s.length) })],
        ["empty address", (m) => ({ ...m, a: "" })],
        ["85-character address", (m) => ({ ...m, a: m.a.slice(0, 85) })],
        ["87-character address", (m) => ({ ...m, a: `${m.a}A` })],
        ["garbage address", (m) => ({ ...m, a: "not an address at all!" })],
        ["address with non-base64url characters", (m) => ({ ...m, a: `${m.a.slice(0, 84)}+/` })],
        ["valid-looking address that is not a curve point (y changed)", (m) => ({ ...m, a: flipChar(m.a, 80, BASE64URL) })],
        ["valid-looking address of zeros (not a curve point)", (m) => ({ ...m, a: "A".repeat(m.a.length) })],
        ["valid-looking address above the field prime", (m) => ({ ...m, a: "_".repeat(m.a.length) })],
      ];

      for (const [label, build] of malformed) {
        it(label, async () => {
          const user = await ready();
          const input = build(await signed(user)) as SignedHash;
          assert.equal(await user.verifySignature(input), false);
        });
      }
    });

    describe("accounts", () => {
      it("encryptAccount returns { name, keys, iv } strings", async () => {
        const user = await ready();
        const account = await user.encryptAccount(PASSWORD);
        assert.equal(typeof account.name, "string");
        assert.equal(typeof account.keys, "string");
        assert.equal(typeof account.iv, "string");
        assert.ok(account.keys.length > 0 && account.iv.length > 0);
      });

      it("encryptAccount does not leak the private key", async () => {
        const user = await ready();
        const keys = await keysOf(user);
        const account = await user.encryptAccount(PASSWORD);
        assert.ok(!JSON.stringify(account).includes(keys.priv));
      });

      it("decryptAccount round-trips; setUser on a fresh adapter gives the same address", async () => {
        const user = await ready();
        const account = await user.encryptAccount(PASSWORD);
        const keys = await user.decryptAccount(account, PASSWORD);
        const other = await ready();
        await other.setUser(keys, account.name);
        assert.equal(other.getAddress(), user.getAddress());
      });

      it("a restored account signs for the original address", async () => {
        const user = await ready();
        const other = await ready();
        await other.setUser(await keysOf(user), "restored");
        const message = await signed(other);
        assert.equal(message.a, user.getAddress());
        assert.equal(await user.verifySignature(message), true);
      });

      it("the decrypted account carries the encrypted account's name", async () => {
        const user = await ready();
        const account = await user.encryptAccount(PASSWORD);
        const keys = await user.decryptAccount(account, PASSWORD);
        assert.equal(keys.name, account.name);
      });

      it("a unicode password round-trips", async () => {
        const user = await ready();
        const password = "pässwörd 🔑 日本";
        const keys = await user.decryptAccount(await user.encryptAccount(password), password);
        const other = await ready();
        await other.setUser(keys, "u");
        assert.equal(other.getAddress(), user.getAddress());
      });

      it("a wrong password rejects with WRONG_PASSWORD", async () => {
        const user = await ready();
        const account = await user.encryptAccount(PASSWORD);
        await assert.rejects(user.decryptAccount(account, "wrong password"), toolDbError(ErrorCode.WRONG_PASSWORD));
        await assert.rejects(user.decryptAccount(account, ""), toolDbError(ErrorCode.WRONG_PASSWORD));
      });

      it("a damaged ciphertext rejects with WRONG_PASSWORD", async () => {
        const user = await ready();
        const account = await user.encryptAccount(PASSWORD);
        const damaged = { ...account, keys: flipChar(account.keys.toLowerCase(), 10, HEX) };
        await assert.rejects(user.decryptAccount(damaged, PASSWORD), toolDbError(ErrorCode.WRONG_PASSWORD));
      });

      it("exportKeys() gives keys that setUser turns into the same identity", async () => {
        const user = await ready();
        const exported = await user.exportKeys();
        const other = await ready();
        await other.setUser(exported, "restored");
        assert.equal(other.getAddress(), user.getAddress());
      });

      it("getAccountFromPrivate(priv) gives the same pub", async () => {
        const user = await ready();
        const keys = await keysOf(user);
        const derived = await user.getAccountFromPrivate(keys.priv);
        assert.equal(derived.pub, keys.pub);
      });

      it("getAccountFromPrivate rejects a string that is not a private key", async () => {
        const user = await ready();
        await assert.rejects(user.getAccountFromPrivate("not a key"));
        await assert.rejects(user.getAccountFromPrivate("00"));
      });
    });
  });
}
