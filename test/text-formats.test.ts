/**
 * The table scans of base/text-formats.ts replace regular expressions on the
 * hot path: they must accept and refuse exactly what those did.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { isBase64, isBase64Url, isHex, isLowerHex } from "../src/base/text-formats.js";

const LOWER_HEX_64 = /^[0-9a-f]{64}$/;
const HEX_128 = /^[0-9a-f]{128}$/i;
const ADDRESS = /^[A-Za-z0-9_-]{86}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Valid samples, each also with one character swapped for every interesting one, and cut short or lengthened. */
function mutations(valid: string[]): string[] {
  const odd = ["g", "G", "A", "F", "-", "_", "+", "/", "=", " ", "\n", "\u00e9", "\u0100", "\ud83d", "\0", "\x7f"];
  const out: string[] = ["", "=", "==", "===", "a=", "ab=", "ab==", "abc=", "a===", "ab=c", "abcd", "abcd=", "abcd===="];
  for (const v of valid) {
    out.push(v, v.toUpperCase(), v.slice(1), `${v}0`, `${v}=`, `${v}==`, `${v.slice(0, -1)}=`, `${v.slice(0, -2)}==`, `${v.slice(0, -3)}===`);
    for (const c of odd) for (const at of [0, v.length >> 1, v.length - 1]) out.push(v.slice(0, at) + c + v.slice(at + 1));
  }
  return out;
}

describe("text formats: table scans match the regular expressions they replace", { timeout: 30_000 }, () => {
  it("hashes, signatures and addresses", () => {
    const samples = mutations([
      ...Array.from({ length: 20 }, () => randomBytes(32).toString("hex")),
      ...Array.from({ length: 20 }, () => randomBytes(64).toString("hex")),
      ...Array.from({ length: 20 }, () => randomBytes(65).toString("base64url").slice(0, 86)),
    ]);
    for (const s of samples) {
      assert.equal(isLowerHex(s, 64), LOWER_HEX_64.test(s), `lower hex: ${JSON.stringify(s)}`);
      assert.equal(isHex(s, 128), HEX_128.test(s), `hex: ${JSON.stringify(s)}`);
      assert.equal(isBase64Url(s, 86), ADDRESS.test(s), `base64url: ${JSON.stringify(s)}`);
    }
    for (const notString of [undefined, null, 64, {}, ["a".repeat(64)]]) {
      assert.equal(isLowerHex(notString, 64), false);
      assert.equal(isHex(notString, 128), false);
      assert.equal(isBase64Url(notString, 86), false);
      assert.equal(isBase64(notString), false);
    }
  });

  it("base64 with its padding, at every length", () => {
    const valid = Array.from({ length: 40 }, (_, n) => randomBytes(n).toString("base64"));
    for (const s of mutations(valid)) assert.equal(isBase64(s), BASE64.test(s), `base64: ${JSON.stringify(s)}`);
  });
});
