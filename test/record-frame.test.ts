/**
 * Frames that splice a record's stored JSON in (relay to subscribers, the
 * broadcast tree) are the same messages as serialised ones.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { frameWithRecord } from "../src/records/record-frame.js";
import { parseMessage } from "../src/records/parse-message.js";
import { signRecord } from "../src/node/record-signer.js";
import { testAuthor } from "./helpers/signed-records.js";

describe("frameWithRecord", () => {
  it("parses to the message serialised whole, data included, for any fields", { timeout: 30_000 }, async () => {
    const record = await signRecord(await testAuthor(), "k/\"quoted\" ünïcode", { text: "a}b{", list: [1, null, "x"] }, Date.now() - 1000, 0, false);
    const fields = { type: "put", id: "m1", to: ["server-a"], r: 2, o: "origin", ack: true };
    const frame = frameWithRecord(fields, JSON.stringify(record));
    assert.deepEqual(JSON.parse(frame), { ...fields, data: record });
    assert.deepEqual(parseMessage(frame), { ...fields, data: record });
    assert.deepEqual(JSON.parse(frameWithRecord({}, JSON.stringify(record))), { data: record });
  });
});
