/** Storage compliance, part 2: sorted access, query by prefix and the range scan (with del). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../../src/base/errors.js";
import type { RangeOptions, StoreEntry, ToolDbStorageAdapter } from "../../src/stores/index.js";
import { type StorageSuiteContext, codePoints, sortedByCodePoint, toolDbError } from "./storage-suite-context.js";

export function queryTests({ open, putAll }: StorageSuiteContext): void {
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
}

export function rangeTests({ open, putAll }: StorageSuiteContext): void {
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

    it("rangePages yields the pairs of range, in the same order, in non-empty pages, honouring the bounds and limit", async () => {
      const store = await open();
      const key = (i: number) => `p${String(i).padStart(5, "0")}`;
      await Promise.all(Array.from({ length: 2500 }, (_, i) => store.put(key(i), String(i))));
      const pages = async (options: RangeOptions) => {
        const out: StoreEntry[][] = [];
        for await (const page of store.rangePages(options)) out.push([...page]);
        return out;
      };
      for (const options of [{}, { gte: key(10), lt: key(2400) }, { gt: key(7), limit: 1001 }, { gte: "q" }, { limit: 0 }] as RangeOptions[]) {
        const paged = await pages(options);
        assert.ok(paged.every((page) => page.length > 0), "no empty page");
        assert.deepEqual(paged.flat(), await collect(store, options));
      }
    });

    it("keyPages yields the keys of range, in the same order, in non-empty pages, honouring the bounds and limit, and stops its read when the reader does", async () => {
      const store = await open();
      const key = (i: number) => `q${String(i).padStart(5, "0")}`;
      await Promise.all(Array.from({ length: 2500 }, (_, i) => store.put(key(i), `value ${i}`)));
      for (const options of [{}, { gte: key(10), lt: key(2400) }, { gt: key(7), limit: 1001 }, { lte: key(3) }, { gte: "r" }, { limit: 0 }] as RangeOptions[]) {
        const paged: string[][] = [];
        for await (const page of store.keyPages(options)) paged.push([...page]);
        assert.ok(paged.every((page) => page.length > 0), "no empty page");
        assert.deepEqual(paged.flat(), (await collect(store, options)).map(([k]) => k));
      }
      // A reader that stops after the first page leaves the store usable (its iterator closed).
      for await (const page of store.keyPages({ gte: "q" })) {
        assert.equal(page[0], key(0));
        break;
      }
      await store.put(key(0), "again");
      assert.equal(await store.get(key(0)), "again");
    });

    it("clear deletes exactly the keys in its bounds, in order with the writes issued around it", async () => {
      const store = await open();
      await putAll(store, ["a", "b", "c", "d", "e", "k\uffff", "k\u{10000}"]);
      await store.clear({ gt: "a", lt: "d" });
      assert.deepEqual(await store.query(""), ["a", "d", "e", ...sortedByCodePoint(["k\uffff", "k\u{10000}"])]);
      await store.clear({ gte: "d", lte: "e" });
      await store.clear({ gte: "k\uffff", lt: "l" });
      assert.deepEqual(await store.query(""), ["a"]);
      // Issued without awaiting: the put before the clear is cleared, the one after it stays.
      await Promise.all([store.put("m1", "x"), store.clear({ gte: "m" }), store.put("m2", "y"), store.clear({ gte: "z" })]);
      assert.deepEqual(await store.query(""), ["a", "m2"]);
      await store.clear();
      assert.deepEqual(await store.query(""), []);
    });

    it("after close, del, clear and range reject with CLOSED", async () => {
      const store = await open();
      await store.close();
      await assert.rejects(store.del("a"), toolDbError(ErrorCode.CLOSED));
      await assert.rejects(store.clear(), toolDbError(ErrorCode.CLOSED));
      await assert.rejects(collect(store), toolDbError(ErrorCode.CLOSED));
    });
  });
}
