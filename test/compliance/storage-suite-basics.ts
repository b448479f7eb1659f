/** Storage compliance, part 1: lifecycle (ready, close, flush, reopen) and get/put round trips. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../../src/base/errors.js";
import { type StorageSuiteContext, codePoints, sortedByCodePoint, toolDbError } from "./storage-suite-context.js";

export function lifecycleTests({ factory, nextName, track, open, putAll }: StorageSuiteContext): void {
  describe("lifecycle", () => {
    it("ready resolves", async () => {
      const store = track(await factory.create(nextName()));
      await assert.doesNotReject(store.ready);
    });

    it("operations issued before ready resolves still succeed", async () => {
      const store = track(await factory.create(nextName()));
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
      const store = track(await factory.create(nextName()));
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
      await assert.rejects(store.getMany(["k"]), toolDbError(ErrorCode.CLOSED));
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
      const storageName = nextName();
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
}

export function getPutTests({ open }: StorageSuiteContext): void {
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

    it("getMany resolves each key's value in order, undefined where missing", async () => {
      const store = await open();
      await store.write([{ type: "put", key: "a", value: "1" }, { type: "put", key: "c", value: "3" }]);
      assert.deepEqual(await store.getMany(["c", "missing", "a", "a"]), ["3", undefined, "1", "1"]);
      assert.deepEqual(await store.getMany([]), []);
    });

    it("write applies its puts and dels in order, with one promise", async () => {
      const store = await open();
      await store.put("gone", "x");
      await store.put("kept", "y");
      await store.write([
        { type: "put", key: "a", value: "1" },
        { type: "del", key: "gone" },
        { type: "put", key: "b", value: "2" },
        { type: "put", key: "a", value: "3" },
        { type: "del", key: "b" },
        { type: "put", key: "c", value: "4" },
      ]);
      assert.deepEqual(await store.query(""), ["a", "c", "kept"]);
      assert.equal(await store.get("a"), "3");
      assert.equal(await store.get("gone"), undefined);
      await assert.doesNotReject(store.write([]));
      // Ordered with single puts issued around it.
      const single = store.put("d", "before");
      const batch = store.write([{ type: "put", key: "d", value: "batch" }]);
      const after = store.put("e", "after");
      await Promise.all([single, batch, after]);
      assert.equal(await store.get("d"), "batch");
      assert.equal(await store.get("e"), "after");
      await store.close();
      await assert.rejects(store.write([{ type: "put", key: "z", value: "1" }]), toolDbError(ErrorCode.CLOSED));
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
}
