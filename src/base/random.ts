const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** CSPRNG bytes drawn a pool at a time: one getRandomValues call serves ~400 ids (a server makes one per relayed record). */
const pool = new Uint8Array(4096);
let used = pool.length;

/** Random id of `length` alphanumerics, like ToolDb's textRandom (CSPRNG here). */
export function randomId(length = 10): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    if (used === pool.length) {
      globalThis.crypto.getRandomValues(pool);
      used = 0;
    }
    out += ALPHABET[pool[used++]! % ALPHABET.length];
  }
  return out;
}

const ANIMALS = ["otter", "heron", "lynx", "ibex", "wren", "marten", "orca", "gecko", "tapir", "yak"];
const ADJECTIVES = ["quiet", "swift", "brave", "calm", "bright", "gentle", "keen", "merry", "nimble", "wise"];

/** A friendly default user name. */
export function randomName(): string {
  const b = new Uint8Array(2);
  globalThis.crypto.getRandomValues(b);
  return `${ADJECTIVES[b[0]! % ADJECTIVES.length]} ${ANIMALS[b[1]! % ANIMALS.length]}`;
}

/**
 * mulberry32, a small seeded PRNG (`() => [0, 1)`): the same seed gives the
 * same sequence, so fuzzing, property tests and fault schedules replay. Not
 * for anything secret; inject it as the `random` option in tests.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
