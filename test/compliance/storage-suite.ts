/**
 * Shared compliance suite for storage adapters (the contract in
 * src/stores/storage-adapter.ts). A store passes if it passes every test here:
 *
 *   import { storageAdapterSuite } from "tooldb-dht/test/compliance/storage-suite";
 *   storageAdapterSuite("MyStore", { create: (name) => new MyStore(undefined, name) });
 *
 * Decisions this suite pins down (the contract header leaves them open):
 * - Keys and values are arbitrary *well-formed* Unicode strings: empty, NUL
 *   ('\u0000'), ':', '.', '==', astral characters, U+FFFF and U+10FFFF included.
 *   ToolDb keys arrive from the network, so a store must neither refuse nor
 *   alias any of them. Lone surrogates are out of scope: they have no UTF-8
 *   form, byte-oriented stores replace them with U+FFFD, so the core should
 *   refuse such keys before they reach a store.
 * - "sorted" means Unicode code point order, which is UTF-8 byte order: what
 *   LevelDB, SQLite (BINARY) and any byte-keyed store give for free. It
 *   differs from JavaScript's default `sort()` (UTF-16 code units) only when
 *   a key mixes characters from U+E000..U+FFFF with astral ones (U+10000+).
 * - `query(prefix, limit)` returns the *first* `limit` keys in that order.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, ToolDbError } from "../../src/core/errors.js";
import type { RangeOptions, StoreEntry, ToolDbStorageAdapter } from "../../src/stores/index.js";

export interface StorageAdapterFactory {
  /** A fresh, empty store named `storageName` (names are unique per call). Need not be ready yet. */
  create(storageName: string): Promise<ToolDbStorageAdapter> | ToolDbStorageAdapter;
  /**
   * Persistent stores only: open `storageName` again after it was closed.
   * When present the suite checks that data survives close and reopen.
   */
  reopen?(storageName: string): Promise<ToolDbStorageAdapter> | ToolDbStorageAdapter;
  /** Runs once after the suite, after every store it opened was closed. */
  cleanup?(): Promise<void> | void;
}

/** Unicode code point order (= UTF-8 byte order) for well-formed strings. */
export function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** An `assert.rejects` validator: a ToolDbError with exactly this code. */
export function toolDbError(code: ErrorCode): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof ToolDbError, `expected a ToolDbError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** Shows keys as code points so assertion diffs stay readable. */
function codePoints(keys: readonly string[]): string[] {
  return keys.map((k) => [...k].map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase()}`).join(" "));
}

function sortedByCodePoint(keys: readonly string[]): string[] {
  return [...keys].sort(compareCodePoints);
}

export function storageAdapterSuite(name: string, factory: StorageAdapterFactory): void {
  describe(`storage adapter compliance: ${name}`, () => {
    const opened: ToolDbStorageAdapter[] = [];
    let counter = 0;

    function track(store: ToolDbStorageAdapter): ToolDbStorageAdapter {
      opened.push(store);
      return store;
    }

    /** A fresh store, ready to use. */
    async function open(): Promise<ToolDbStorageAdapter> {
      const store = track(await factory.create(`compliance-${++counter}`));
      await store.ready;
      return store;
    }

    async function putAll(store: ToolDbStorageAdapter, keys: readonly string[], value = "v"): Promise<void> {
      for (const key of keys) await store.put(key, value);
    }

    after(async () => {
      await Promise.allSettled(opened.map((s) => s.close()));
      await factory.cleanup?.();
    });

    describe("lifecycle", () => {
      it("ready resolves", async () => {
        const store = track(await factory.create(`compliance-${++counter}`));
        await assert.doesNotReject(store.ready);
      });

      it("operations issued before ready resolves still succeed", async () => {
        const store = track(await factory.create(`compliance-${++counter}`));
        await store.put("early", "bird");
        assert.equal(await store.get("early"), "bird");
      });

      it("close is idempotent (twice in a row and concurrently)", async () => {
        const store = await open();
        await store.close();
        await assert.doesNotReject(store.close());
        const other = await open();
        await assert.doesNotReject(Promise.all([other.close(), other.close(), other.close()]));
      });

      it("close right after create (before ready) resolves", async () => {
        const store = track(await factory.create(`compliance-${++counter}`));
        await assert.doesNotReject(store.close());
      });

      it("after close, put, get and query reject with CLOSED", async () => {
        const store = await open();
        await store.put("k", "v");
        await store.close();
        await assert.rejects(store.put("k", "v2"), toolDbError(ErrorCode.CLOSED));
        await assert.rejects(store.get("k"), toolDbError(ErrorCode.CLOSED));
        await assert.rejects(store.query(""), toolDbError(ErrorCode.CLOSED));
        await assert.rejects(store.query("k", 1), toolDbError(ErrorCode.CLOSED));
      });

      it("operations started before close settle (resolve, or reject with CLOSED)", async () => {
        const store = await open();
        await store.put("a", "1");
        const inFlight = [store.put("b", "2"), store.get("a"), store.query("")];
        await store.close();
        for (const result of await Promise.allSettled(inFlight)) {
          if (result.status === "rejected") toolDbError(ErrorCode.CLOSED)(result.reason);
        }
      });

      it("flush (also many at once) resolves, leaves every key as it was, and rejects with CLOSED after close", async () => {
        const store = await open();
        await putAll(store, ["a", "", "\u0000", "\uffff"]);
        await Promise.all([store.flush(), store.flush(), store.put("b", "v").then(() => store.flush())]);
        assert.deepEqual(await store.query(""), sortedByCodePoint(["", "\u0000", "a", "b", "\uffff"]));
        await store.close();
        await assert.rejects(store.flush(), toolDbError(ErrorCode.CLOSED));
      });

      it("data survives close and reopen", { skip: factory.reopen ? false : "not a persistent store" }, async () => {
        const storageName = `compliance-${++counter}`;
        const first = track(await factory.create(storageName));
        await first.ready;
        await first.put("kept", "value");
        await first.put("==alice", '{"v":1}');
        await first.close();
        const second = track(await factory.reopen!(storageName));
        await second.ready;
        assert.equal(await second.get("kept"), "value");
        assert.equal(await second.get("==alice"), '{"v":1}');
        assert.deepEqual(await second.query(""), ["==alice", "kept"]);
      });
    });

    describe("get and put", () => {
      it("get of a missing key resolves undefined", async () => {
        const store = await open();
        assert.equal(await store.get("missing"), undefined);
      });

      it("put then get round-trips the value", async () => {
        const store = await open();
        const value = JSON.stringify({ k: "key", v: { n: 1 }, t: 1700000000000 });
        await store.put("key", value);
        assert.equal(await store.get("key"), value);
      });

      it("put overwrites an existing value", async () => {
        const store = await open();
        await store.put("key", "first");
        await store.put("key", "second");
        assert.equal(await store.get("key"), "second");
        assert.deepEqual(await store.query("key"), ["key"]);
      });

      it("get resolves a string, not a Buffer or parsed value", async () => {
        const store = await open();
        await store.put("n", "42");
        assert.equal(typeof (await store.get("n")), "string");
      });

      it("the empty string is a valid value", async () => {
        const store = await open();
        await store.put("empty", "");
        assert.equal(await store.get("empty"), "");
      });

      it("unicode values round-trip exactly", async () => {
        const store = await open();
        const value = "héllo wörld · 日本語 · emoji 🎉👍🏽 · \u0000nul · \uffff · \u{10FFFF} · \r\n\t";
        await store.put("unicode", value);
        assert.equal(await store.get("unicode"), value);
      });

      it("a 1 MiB value round-trips", async () => {
        const store = await open();
        const chunk = "0123456789abcdef🎉é";
        const value = chunk.repeat(Math.ceil((1024 * 1024) / chunk.length)).slice(0, 1024 * 1024);
        await store.put("large", value);
        const got = await store.get("large");
        assert.equal(got?.length, value.length);
        assert.ok(got === value, "large value differs");
      });

      it("keys with ToolDb namespace characters round-trip (':', '.', '==')", async () => {
        const store = await open();
        const keys = [":pubkeyAddress.profile", "==alice", "a.b.c", "==", ":", ".", "%2F/\\\"'*?[]"];
        for (const [i, key] of keys.entries()) await store.put(key, `v${i}`);
        for (const [i, key] of keys.entries()) assert.equal(await store.get(key), `v${i}`, `key ${JSON.stringify(key)}`);
      });

      it("keys with unicode, whitespace and NUL round-trip and stay distinct", async () => {
        const store = await open();
        const keys = [
          "日本語",
          "emoji 🎉",
          "tab\tnewline\n",
          "\u0000",
          "nul\u0000inside",
          "nul",
          "\uffff",
          "\u{10000}",
          "\u{10FFFF}",
          "\ufffd",
          "k".repeat(1000),
        ];
        for (const [i, key] of keys.entries()) await store.put(key, `v${i}`);
        // Written one after the other: if two keys aliased, the earlier one would read the later value.
        for (const [i, key] of keys.entries()) assert.equal(await store.get(key), `v${i}`, `key ${codePoints([key])}`);
      });

      it("the empty string is a valid key", async () => {
        const store = await open();
        await store.put("", "empty key");
        assert.equal(await store.get(""), "empty key");
        assert.deepEqual(await store.query(""), [""]);
      });

      it("keys are case-sensitive", async () => {
        const store = await open();
        await store.put("Key", "upper");
        await store.put("key", "lower");
        assert.equal(await store.get("Key"), "upper");
        assert.equal(await store.get("key"), "lower");
      });
    });

    describe("query", () => {
      it("returns only keys with the prefix", async () => {
        const store = await open();
        await putAll(store, ["user.a", "user.b", "user", "users", "usea", "use", "other", "User.c", "xuser.d"]);
        assert.deepEqual(await store.query("user"), ["user", "user.a", "user.b", "users"]);
        assert.deepEqual(await store.query("user."), ["user.a", "user.b"]);
      });

      it("returns keys sorted", async () => {
        const store = await open();
        const keys = ["p9", "p10", "p1", "p", "pZ", "pa", "p_", "p-", "p~", "p.x", "p:x"];
        await putAll(store, [...keys].reverse());
        assert.deepEqual(await store.query("p"), sortedByCodePoint(keys));
      });

      it("with prefix '' lists every key", async () => {
        const store = await open();
        const keys = ["b", "a", ":x.y", "==u", "z", "日"];
        await putAll(store, keys);
        assert.deepEqual(await store.query(""), sortedByCodePoint(keys));
      });

      it("resolves [] when nothing matches, and on an empty store", async () => {
        const store = await open();
        assert.deepEqual(await store.query(""), []);
        await store.put("abc", "v");
        assert.deepEqual(await store.query("abd"), []);
        assert.deepEqual(await store.query("abcd"), []);
      });

      it("honours limit, returning the first keys in order", async () => {
        const store = await open();
        const keys = Array.from({ length: 20 }, (_, i) => `item-${String(i).padStart(2, "0")}`);
        await putAll(store, [...keys].reverse());
        assert.deepEqual(await store.query("item-", 5), keys.slice(0, 5));
        assert.deepEqual(await store.query("item-", 1), keys.slice(0, 1));
        assert.deepEqual(await store.query("item-", 100), keys);
        assert.deepEqual(await store.query("", 3), keys.slice(0, 3));
      });

      it("with limit 0 resolves []", async () => {
        const store = await open();
        await putAll(store, ["a", "b"]);
        assert.deepEqual(await store.query("", 0), []);
      });

      it("treats the prefix literally (no pattern characters)", async () => {
        const store = await open();
        await putAll(store, ["a.b", "axb", "a*", "a*b", "a%", "a_", "a[1]", "a\\"]);
        assert.deepEqual(await store.query("a."), ["a.b"]);
        assert.deepEqual(await store.query("a*"), ["a*", "a*b"]);
        assert.deepEqual(await store.query("a%"), ["a%"]);
        assert.deepEqual(await store.query("a_"), ["a_"]);
        assert.deepEqual(await store.query("a["), ["a[1]"]);
        assert.deepEqual(await store.query("a\\"), ["a\\"]);
      });

      it("includes keys whose next character after the prefix is high unicode (U+FFFF, U+10FFFF)", async () => {
        const store = await open();
        const inside = [
          "p",
          "p\u0000",
          "p\u007f",
          "p\u0080",
          "p\u07ff",
          "p\u0800",
          "p\ud7ff",
          "p\ue000",
          "p\uffff",
          "p\uffffz",
          "p\u{10000}",
          "p\u{10FFFF}",
          "p\u{10FFFF}z",
          "p\u{10FFFF}\u{10FFFF}",
        ];
        const outside = ["o", "o\u{10FFFF}", "q", "q\u0000", "P", "\u{10FFFF}p"];
        await putAll(store, [...outside, ...inside]);
        assert.deepEqual(codePoints(sortedByCodePoint(await store.query("p"))), codePoints(sortedByCodePoint(inside)));
      });

      it("includes keys when the prefix itself ends in high unicode", async () => {
        const store = await open();
        const inside = ["\uffff", "\uffff\uffff", "\uffff\u{10FFFF}", "\uffffa"];
        await putAll(store, [...inside, "\ufffe", "\u{10000}"]);
        assert.deepEqual(codePoints(sortedByCodePoint(await store.query("\uffff"))), codePoints(sortedByCodePoint(inside)));
        const astral = ["\u{10FFFF}", "\u{10FFFF}\u{10FFFF}", "\u{10FFFF}a"];
        await putAll(store, astral);
        assert.deepEqual(codePoints(sortedByCodePoint(await store.query("\u{10FFFF}"))), codePoints(sortedByCodePoint(astral)));
      });

      it("sorts in code point order when BMP and astral characters mix", async () => {
        const store = await open();
        // UTF-16 code-unit order would put the astral keys (surrogates 0xD800..) before U+E000..U+FFFF.
        const keys = ["p\u{1F389}", "p\uffff", "p\u{10000}", "p\ue000", "pz"];
        await putAll(store, keys);
        assert.deepEqual(codePoints(await store.query("p")), codePoints(sortedByCodePoint(keys)));
      });
    });

    describe("del and range (the sorted scan that secondary indexes are built on)", () => {
      async function collect(store: ToolDbStorageAdapter, options: RangeOptions = {}): Promise<StoreEntry[]> {
        const out: StoreEntry[] = [];
        for await (const entry of store.range(options)) out.push(entry);
        return out;
      }

      it("del removes a key; deleting a missing key resolves", async () => {
        const store = await open();
        await putAll(store, ["a", "b"]);
        await store.del("a");
        await store.del("never-written");
        assert.equal(await store.get("a"), undefined);
        assert.deepEqual(await store.query(""), ["b"]);
      });

      it("range streams [key, value] pairs in code point order, honouring gte/gt/lt/lte and limit", async () => {
        const store = await open();
        const keys = ["k0", "k1", "k2", "k3", "k\uffff", "k\u{10000}", "l"];
        for (const key of keys) await store.put(key, `v:${key}`);
        const sorted = sortedByCodePoint(keys);
        assert.deepEqual((await collect(store)).map(([k]) => k), sorted);
        assert.deepEqual(await collect(store, { gte: "k1", lt: "k3" }), [["k1", "v:k1"], ["k2", "v:k2"]]);
        assert.deepEqual((await collect(store, { gt: "k1", lte: "k3" })).map(([k]) => k), ["k2", "k3"]);
        assert.deepEqual((await collect(store, { gte: "k", limit: 2 })).map(([k]) => k), ["k0", "k1"]);
        assert.deepEqual(codePoints((await collect(store, { gt: "k3", lt: "l" })).map(([k]) => k)), codePoints(sortedByCodePoint(["k\uffff", "k\u{10000}"])));
        assert.deepEqual(await collect(store, { gte: "x" }), []);
        assert.deepEqual(await collect(store, { limit: 0 }), []);
      });

      it("a range over more entries than any page streams all of them once, even with writes during the scan", async () => {
        const store = await open();
        const key = (i: number) => `s${String(i).padStart(5, "0")}`;
        await Promise.all(Array.from({ length: 3000 }, (_, i) => store.put(key(i), String(i))));
        const seen: string[] = [];
        let i = 0;
        for await (const [k] of store.range({ gte: "s" })) {
          seen.push(k);
          // Writes below and above the cursor, and a delete ahead of it.
          if (++i % 500 === 0) await Promise.all([store.put(`r${i}`, "x"), store.put(`t${i}`, "x"), store.del(key(2999))]);
        }
        const base = seen.filter((k) => k.startsWith("s"));
        assert.equal(new Set(seen).size, seen.length, "no key repeats");
        assert.deepEqual(base.slice(0, 2999), Array.from({ length: 2999 }, (_, j) => key(j)));
      });

      it("after close, del and range reject with CLOSED", async () => {
        const store = await open();
        await store.close();
        await assert.rejects(store.del("a"), toolDbError(ErrorCode.CLOSED));
        await assert.rejects(collect(store), toolDbError(ErrorCode.CLOSED));
      });
    });

    describe("concurrency", () => {
      it("1000 parallel puts are all readable afterwards", async () => {
        const store = await open();
        const n = 1000;
        const key = (i: number) => `c:${String(i).padStart(4, "0")}`;
        await Promise.all(Array.from({ length: n }, (_, i) => store.put(key(i), `value ${i}`)));
        const values = await Promise.all(Array.from({ length: n }, (_, i) => store.get(key(i))));
        values.forEach((v, i) => assert.equal(v, `value ${i}`));
        const keys = await store.query("c:");
        assert.equal(keys.length, n);
        assert.deepEqual(keys, Array.from({ length: n }, (_, i) => key(i)));
      });

      it("parallel puts to one key leave one of the written values", async () => {
        const store = await open();
        const written = Array.from({ length: 50 }, (_, i) => `v${i}`);
        await Promise.all(written.map((v) => store.put("same", v)));
        assert.ok(written.includes((await store.get("same"))!));
        assert.deepEqual(await store.query("same"), ["same"]);
      });

      it("writes issued without awaiting apply in the order issued: the last put or del of a key wins", async () => {
        const store = await open();
        const ops: Promise<void>[] = [];
        for (let i = 0; i < 300; i++) {
          const key = `o${String(i).padStart(3, "0")}`;
          if (i % 3 === 0) ops.push(store.put(key, "first"), store.put(key, "last"));
          else if (i % 3 === 1) ops.push(store.put(key, "first"), store.del(key));
          else ops.push(store.put(key, "first"), store.del(key), store.put(key, "last"));
        }
        await Promise.all(ops);
        const values = await Promise.all(Array.from({ length: 300 }, (_, i) => store.get(`o${String(i).padStart(3, "0")}`)));
        values.forEach((v, i) => assert.equal(v, i % 3 === 1 ? undefined : "last", `key ${i}`));
        assert.equal((await store.query("o")).length, 200);
      });

      it("a burst of 5000 puts, dels and gets in one turn settles with every value right", async () => {
        const store = await open();
        const key = (i: number) => `b:${String(i).padStart(4, "0")}`;
        await Promise.all(Array.from({ length: 1000 }, (_, i) => store.put(key(i), `old ${i}`)));
        // Gets of keys written before the burst see them; the burst's own writes land in order.
        const reads = Array.from({ length: 1000 }, (_, i) => store.get(key(i)));
        const writes = Array.from({ length: 4000 }, (_, i) => (i % 4 === 3 ? store.del(key(i)) : store.put(key(i), `new ${i}`)));
        const seen = await Promise.all(reads);
        await Promise.all(writes);
        seen.forEach((v, i) => assert.ok(v === `old ${i}` || v === `new ${i}` || v === undefined, `key ${i}: ${v}`));
        const after = await Promise.all(Array.from({ length: 4000 }, (_, i) => store.get(key(i))));
        after.forEach((v, i) => assert.equal(v, i % 4 === 3 ? undefined : `new ${i}`, `key ${i}`));
      });

      it("every put that resolved before close is there after reopen, also when issued without awaiting", { skip: factory.reopen ? false : "not a persistent store" }, async () => {
        const storageName = `compliance-${++counter}`;
        const first = track(await factory.create(storageName));
        await first.ready;
        const puts = Array.from({ length: 2000 }, (_, i) => first.put(`w${String(i).padStart(4, "0")}`, String(i)));
        const closed = first.close();
        const results = await Promise.allSettled(puts);
        await closed;
        const second = track(await factory.reopen!(storageName));
        await second.ready;
        const kept = await second.query("w");
        results.forEach((r, i) => {
          if (r.status === "rejected") toolDbError(ErrorCode.CLOSED)(r.reason);
          else assert.ok(kept.includes(`w${String(i).padStart(4, "0")}`), `resolved put ${i} lost`);
        });
      });

      it("reads interleaved with writes never reject", async () => {
        const store = await open();
        const ops: Promise<unknown>[] = [];
        for (let i = 0; i < 200; i++) {
          ops.push(store.put(`r${i % 10}`, `${i}`), store.get(`r${(i + 5) % 10}`), store.query("r", 5));
        }
        await assert.doesNotReject(Promise.all(ops));
        assert.equal((await store.query("r")).length, 10);
      });
    });
  });
}
