/**
 * What the ids of an initiator's id list cost a responder (found in review
 * of the range-sync cost fix): it decoded each to hex and dropped it, one
 * range of work charged for the whole list. A `syncRange` of one id list
 * of 23,000 ids (736 KB) took 11.3 ms to answer for 16 items of work (the
 * list and the answer). The responder never uses them: it now passes over
 * them unread (0.01 ms).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { BoundCoder, ByteReader, ByteWriter, type Item } from "../src/node/sync/negentropy-codec.js";
import { Reconciler } from "../src/node/sync/negentropy.js";

const none = {
  async *scan(): AsyncGenerator<Item> {},
};

describe("an initiator's id list at a responder", () => {
  it("is passed over unread: its ids are not decoded, and the answer is the responder's own id list", { timeout: 30_000 }, async () => {
    const n = 23_000;
    const w = new ByteWriter();
    w.byte(0x61);
    const coder = new BoundCoder();
    coder.write(w, { t: 5, id: "" });
    w.varint(2);
    w.varint(n);
    w.bytes(randomBytes(32 * n));
    const hex = ByteReader.prototype.hex;
    let decoded = 0;
    ByteReader.prototype.hex = function (this: ByteReader, bytes: number) {
      decoded++;
      return hex.call(this, bytes);
    };
    try {
      const { output } = await new Reconciler(none, 0, false).reconcile(w.view().slice());
      // Bounds' id prefixes only (none here); before: one a listed id.
      assert.ok(decoded <= 2, `${decoded} reads of hex for ${n} ids`);
      // The answer: our (empty) id list up to the same bound.
      assert.equal(Buffer.from(output!).toString("hex"), "6106000200");
    } finally {
      ByteReader.prototype.hex = hex;
    }
  });
});
