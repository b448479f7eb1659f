/**
 * What range runs held by a sign-up quota leave out (src/node/refused-sign-ups.ts): the sign-ups refused from a peer
 * (by its address, whatever its link), the latest REMEMBERED to 2 × REMEMBERED of all peers together, one peer's never
 * taken for another's.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sha256Hex } from "../src/crypto/sha256.js";
import { REMEMBERED, RefusedSignUps } from "../src/node/refused-sign-ups.js";

const id = (i: number) => sha256Hex(`sign-up ${i}`);

describe("refused sign-ups remembered for held range runs", { timeout: 60_000 }, () => {
  it("remembers each peer's own, far more than 256, and forgets the oldest past its bound", () => {
    const [a, b] = ["peer-a", "peer-b"];
    const refused = new RefusedSignUps();
    for (let i = 0; i < REMEMBERED; i++) refused.add(a, id(i));
    assert.ok(refused.has(a, id(0)) && refused.has(a, id(REMEMBERED - 1)), "every one of the latest REMEMBERED");
    assert.equal(refused.has(b, id(0)), false, "not another peer's");
    assert.equal(refused.has(a, id(REMEMBERED)), false);
    // Two more generations of another peer's refusals: the first peer's, not asked about since, are forgotten.
    for (let i = 0; i < 2 * REMEMBERED; i++) refused.add(b, id(REMEMBERED + i));
    assert.equal(refused.has(a, id(1)), false, "bounded for the whole server");
    assert.ok(refused.has(b, id(3 * REMEMBERED - 1)));
  });

  it("one asked about again is kept longer than one that is not", () => {
    const link = "peer";
    const refused = new RefusedSignUps();
    for (let i = 0; i < REMEMBERED; i++) refused.add(link, id(i));
    for (let i = 0; i < REMEMBERED / 2; i++) refused.add(link, id(REMEMBERED + i)); // a generation later
    assert.ok(refused.has(link, id(0)), "asked about in a held run: moves to the recent generation");
    for (let i = REMEMBERED / 2; i < REMEMBERED + 1; i++) refused.add(link, id(REMEMBERED + i));
    assert.ok(refused.has(link, id(0)));
    assert.equal(refused.has(link, id(1)), false);
  });
});
