/**
 * Seeded generation of hostile ToolDb frames: mutations of valid messages
 * (wrong types, dropped fields, deep nesting, huge numbers, prototype keys,
 * lone surrogates, bloated arrays and strings), broken JSON, and invalid
 * UTF-8. The same seed gives the same frames, so a failure replays.
 */

import { seededRandom } from "../../src/base/random.js";

export { seededRandom };

export type FuzzMessage = Record<string, unknown>;

/** One generated frame: text for a text frame, or bytes that are not valid UTF-8. */
export type FuzzFrame = { kind: string; text: string } | { kind: string; bytes: Buffer };

const HUGE_NUMBERS = ["1e308", "-1e308", "1e400", "-1e400", "18446744073709551617", "123456789012345678901234567890", "-0", "4.9e-324", "9007199254740993"];
const PROTO_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"];
const ODD_STRINGS = ["", "\u0000", "\ud800", "\udfff\ud800", "..", ".", ":", "==", "\u202e", "a".repeat(2000), "💥", "\\", '"', "null", "undefined"];
const TYPES = ["put", "get", "subscribe", "query", "queryAck", "function", "functionReturn", "ping", "pong", "putAck", "crdtPut", "crdtGet", "", "PUT", "__proto__", "constructor", "toString", "x".repeat(300)];

export class FrameFuzzer {
  private readonly rnd: () => number;

  constructor(
    seed: number,
    /** Valid messages to mutate (they are never modified). */
    private readonly corpus: FuzzMessage[],
  ) {
    this.rnd = seededRandom(seed);
  }

  private int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** A value of a random JSON type (as JSON text when `raw` is needed). */
  private value(depth = 0): unknown {
    switch (this.int(depth > 2 ? 6 : 9)) {
      case 0:
        return null;
      case 1:
        return this.rnd() < 0.5;
      case 2:
        return this.int(2 ** 31) - 2 ** 30;
      case 3:
        return this.pick(ODD_STRINGS);
      case 4:
        return this.rnd() * 1e6;
      case 5:
        return "s".repeat(this.int(64));
      case 6:
        return [this.value(depth + 1), this.value(depth + 1)];
      case 7:
        return { [this.pick(PROTO_KEYS)]: this.value(depth + 1), k: this.value(depth + 1) };
      default:
        return {};
    }
  }

  /** A copy of a corpus message with a fresh id (a repeated id would only hit the dedup set). */
  private clone(): FuzzMessage {
    const m = structuredClone(this.pick(this.corpus));
    if (typeof m.id === "string") m.id = `fz${this.int(2 ** 31)}`;
    return m;
  }

  /** Paths to every field of an object, up to a small depth. */
  private paths(obj: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
    if (typeof obj !== "object" || obj === null || prefix.length > 3) return out;
    for (const key of Object.keys(obj)) {
      out.push([...prefix, key]);
      this.paths((obj as Record<string, unknown>)[key], [...prefix, key], out);
    }
    return out;
  }

  /** Sets (or deletes) the field at a random path; returns the message. */
  private mutateField(m: FuzzMessage, change: (parent: Record<string, unknown>, key: string) => void): FuzzMessage {
    const paths = this.paths(m);
    if (paths.length === 0) return m;
    const path = this.pick(paths);
    let parent = m as Record<string, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
    change(parent, path[path.length - 1]!);
    return m;
  }

  private nested(depth: number, leaf: string): string {
    const open = this.rnd() < 0.5 ? "[" : '{"a":';
    const close = open === "[" ? "]" : "}";
    return open.repeat(depth) + leaf + close.repeat(depth);
  }

  /** Splices raw JSON text in place of a random field's value (for numbers JSON.stringify cannot write). */
  private withRawField(m: FuzzMessage, raw: string): string {
    const marker = `__RAW_${this.int(1e9)}__`;
    this.mutateField(m, (parent, key) => (parent[key] = marker));
    return JSON.stringify(m).replace(`"${marker}"`, raw);
  }

  next(): FuzzFrame {
    const r = this.int(100);
    if (r < 18) return { kind: "wrong-type", text: JSON.stringify(this.mutateField(this.clone(), (p, k) => (p[k] = this.value()))) };
    if (r < 28) return { kind: "missing-field", text: JSON.stringify(this.mutateField(this.clone(), (p, k) => delete p[k])) };
    if (r < 36) {
      const m = this.clone();
      m.type = this.pick(TYPES);
      return { kind: "type-swap", text: JSON.stringify(m) };
    }
    if (r < 44) return { kind: "deep-nesting", text: this.withRawField(this.clone(), this.nested(1 + this.int(3000), this.pick(["1", "null", '"x"', "{}"]))) };
    if (r < 52) return { kind: "huge-number", text: this.withRawField(this.clone(), this.pick(HUGE_NUMBERS)) };
    if (r < 62) {
      // Prototype keys as own JSON properties, at the top or inside a field.
      const key = this.pick(PROTO_KEYS);
      const payload = `{"polluted":true,"type":"put","k":${JSON.stringify(this.pick(ODD_STRINGS))}}`;
      const text = JSON.stringify(this.clone());
      if (this.rnd() < 0.5) return { kind: "prototype-key", text: `{"${key}":${payload},${text.slice(1)}` };
      return { kind: "prototype-key", text: this.withRawField(this.clone(), `{"${key}":${payload}}`) };
    }
    if (r < 68) return { kind: "odd-string", text: JSON.stringify(this.mutateField(this.clone(), (p, k) => (p[k] = this.pick(ODD_STRINGS)))) };
    if (r < 72) {
      const m = this.clone();
      const big = Array.from({ length: 100 + this.int(20_000) }, (_, i) => `x${i}`);
      m[this.pick(["to", "keys", "servers", "refused", "stored"])] = big;
      return { kind: "bloated-array", text: JSON.stringify(m) };
    }
    if (r < 75) return { kind: "long-string", text: JSON.stringify(this.mutateField(this.clone(), (p, k) => (p[k] = "L".repeat(1000 + this.int(200_000))))) };
    if (r < 80) {
      const extra = this.clone();
      for (let i = 0; i < 1 + this.int(5); i++) extra[this.pick(PROTO_KEYS.concat(["extra", "ack", "data", "v"]))] = this.value();
      return { kind: "extra-fields", text: JSON.stringify(extra) };
    }
    if (r < 86) return { kind: "not-an-object", text: this.pick(["null", "[]", "1", '"str"', "true", "{}", "[{}]", '{"type":null}', "1e999"]) };
    if (r < 90) return { kind: "valid", text: JSON.stringify(this.clone()) };
    if (r < 95) {
      // Broken JSON: truncated or with a flipped byte (closes the link).
      const text = JSON.stringify(this.clone());
      const cut = this.int(Math.max(1, text.length - 1));
      return { kind: "broken-json", text: this.rnd() < 0.5 ? text.slice(0, cut) : text.slice(0, cut) + String.fromCharCode(this.int(128)) + text.slice(cut + 1) };
    }
    // Invalid UTF-8: lone continuation bytes, overlong forms, 0xFF, a cut multi-byte sequence.
    const text = Buffer.from(JSON.stringify(this.clone()), "utf8");
    const bad = this.pick([[0xff], [0xc0, 0xaf], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]);
    const at = 1 + this.int(Math.max(1, text.length - 2));
    return { kind: "invalid-utf8", bytes: Buffer.concat([text.subarray(0, at), Buffer.from(bad), text.subarray(at)]) };
  }
}
