/** Topic → info hash must match discovery-channel 5, the guide's library. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { isToolDbError } from "../../src/base/errors.js";
import { topicInfoHash } from "../../src/discovery/info-hash.js";

const require = createRequire(import.meta.url);

/** The hex info hash discovery-channel uses for `id` (no network: dht and dns off). */
function discoveryChannelHash(id: string | Buffer): string {
  const DC = require("discovery-channel") as (opts: object) => {
    join(id: string | Buffer): void;
    destroy(): void;
    _unhash: Record<string, unknown>;
  };
  const channel = DC({ dht: false, dns: false });
  channel.join(id);
  const keys = Object.keys(channel._unhash);
  channel.destroy();
  assert.equal(keys.length, 1);
  return keys[0]!;
}

describe("topicInfoHash", () => {
  it("is sha1 of the UTF-8 string, as discovery-channel", () => {
    for (const topic of ["my-app-topic", "tooldb-v1", "ünïcødé ✓"]) {
      const ours = topicInfoHash(topic);
      assert.equal(ours.length, 20);
      assert.equal(ours.toString("hex"), createHash("sha1").update(topic, "utf8").digest("hex"));
      assert.equal(ours.toString("hex"), discoveryChannelHash(topic));
    }
  });

  it("hashes byte topics too (even 20-byte ones), as discovery-channel", () => {
    const bytes = createHash("sha1").update("x").digest();
    assert.equal(bytes.length, 20);
    const ours = topicInfoHash(bytes);
    assert.notDeepEqual(ours, bytes);
    assert.equal(ours.toString("hex"), discoveryChannelHash(bytes));
    // a Uint8Array view gives the same hash as the Buffer
    const view = new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 20));
    assert.deepEqual(topicInfoHash(view), ours);
  });

  it("hash: false uses a 20-byte topic as is and refuses other lengths", () => {
    const bytes = Buffer.alloc(20, 7);
    assert.deepEqual(topicInfoHash(bytes, false), bytes);
    assert.throws(() => topicInfoHash("short", false), (err) => isToolDbError(err, "INVALID_ARGUMENT"));
  });

  it("a custom hash is truncated to 20 bytes", () => {
    const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest();
    const h = topicInfoHash("t", sha256);
    assert.deepEqual(h, createHash("sha256").update("t").digest().subarray(0, 20));
  });
});
