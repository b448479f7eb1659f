/**
 * The packed form in which batches of signature checks travel to the
 * verification threads (crypto/verify-pool.ts): one string per batch, each
 * entry the record hash (64 hex), the author address (86 base64url) and the
 * signature (128 hex) back to back, so a batch of hundreds of checks is one
 * flat string to copy between threads instead of hundreds of objects.
 * Callers check the three formats first (the record verifier does).
 */
export const HASH_CHARS = 64;
export const ADDRESS_CHARS = 86;
export const SIGNATURE_CHARS = 128;
export const ENTRY_CHARS = HASH_CHARS + ADDRESS_CHARS + SIGNATURE_CHARS;

/** One entry of a packed batch; false when a field has the wrong length (the batch would be misaligned). */
export function packEntry(h: string, a: string, s: string): string | undefined {
  if (h.length !== HASH_CHARS || a.length !== ADDRESS_CHARS || s.length !== SIGNATURE_CHARS) return undefined;
  return h + a + s;
}

/**
 * Checks every entry of `packed` with `verify(hash, address, signature)`
 * (which must not throw); byte i of the result is 1 when entry i verified.
 */
export function verifyPacked(packed: string, verify: (h: string, a: string, s: string) => boolean): Uint8Array {
  const count = Math.floor(packed.length / ENTRY_CHARS);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * ENTRY_CHARS;
    const h = packed.slice(at, at + HASH_CHARS);
    const a = packed.slice(at + HASH_CHARS, at + HASH_CHARS + ADDRESS_CHARS);
    const s = packed.slice(at + HASH_CHARS + ADDRESS_CHARS, at + ENTRY_CHARS);
    out[i] = verify(h, a, s) ? 1 : 0;
  }
  return out;
}
