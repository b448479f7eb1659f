/**
 * Format checks of the fixed-size fields every record carries (hashes,
 * signatures, addresses) and of base64 payloads. They run several times a
 * record, so they scan with a table instead of a regular expression: V8's
 * regexp for `^[0-9a-f]{128}$` took ~0.5 µs a call here, the table scan
 * half that, and on a 32 KiB base64 range message a twentieth.
 */

const LOWER_HEX = charTable("0123456789abcdef");
const ANY_HEX = charTable("0123456789abcdefABCDEF");
const BASE64URL = charTable("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
const BASE64 = charTable("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

function charTable(chars: string): Uint8Array {
  const table = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)] = 1;
  return table;
}

/** True when `s[from, to)` holds only characters of `table` (ASCII). */
function allIn(s: string, table: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || table[c] === 0) return false;
  }
  return true;
}

/** `length` lower-case hex digits (a SHA-256 hash, an item id). */
export function isLowerHex(s: unknown, length: number): s is string {
  return typeof s === "string" && s.length === length && allIn(s, LOWER_HEX, 0, length);
}

/** `length` hex digits of either case (a signature: tool-db accepts both). */
export function isHex(s: unknown, length: number): s is string {
  return typeof s === "string" && s.length === length && allIn(s, ANY_HEX, 0, length);
}

/** `length` base64url characters, no padding (a P-256 address: x and y). */
export function isBase64Url(s: unknown, length: number): s is string {
  return typeof s === "string" && s.length === length && allIn(s, BASE64URL, 0, length);
}

/** Standard base64 with its padding: groups of four, the last one ending in at most two `=`. */
export function isBase64(s: unknown): s is string {
  if (typeof s !== "string" || s.length % 4 !== 0) return false;
  let end = s.length;
  if (end > 0 && s.charCodeAt(end - 1) === 61 /* = */) end--;
  if (end > 0 && s.length - end === 1 && s.charCodeAt(end - 1) === 61) end--;
  return allIn(s, BASE64, 0, end);
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Index of the first lone surrogate in `s` (a UTF-16 code unit of a pair
 * without its other half), or -1 when `s` is well-formed. Stores keep keys
 * as UTF-8, where every lone surrogate becomes U+FFFD: "note\uD800" and
 * "note\uFFFD" would share one slot. String.prototype.isWellFormed is not
 * in every browser supported, hence this: one regexp scan (no surrogate at
 * all, nearly every key), then a pairing scan only of keys with one.
 */
export function loneSurrogateAt(s: string): number {
  if (!SURROGATE.test(s)) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return i;
    const next = s.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return i;
    i++;
  }
  return -1;
}

/** True when `s` has no lone surrogate (see loneSurrogateAt). */
export function isWellFormedText(s: string): boolean {
  return loneSurrogateAt(s) === -1;
}

/**
 * Unicode code point order (= UTF-8 byte order, LevelDB's order). JavaScript's
 * default sort compares UTF-16 code units, which puts astral characters
 * (surrogates 0xD800-0xDFFF) before U+E000..U+FFFF; move surrogates above them.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
