/**
 * Byte/string encodings used on the ToolDb wire. Pure functions that work in
 * Node and browsers (no Buffer).
 */
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * One flat string. (Appending in a loop builds a rope of one cons string per
 * byte, about 1 KiB for a 32-byte id, which lives as long as the id: ids
 * queued during a catch-up used to fill the old generation this way.)
 */
export function bytesToHex(bytes: Uint8Array): string {
  const parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) parts[i] = HEX_BYTE[bytes[i]!]!;
  return parts.join("");
}

/** Strict: throws on odd length or non-hex characters. */
export function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0) throw new TypeError("invalid hex string");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new TypeError("invalid hex string");
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

const encoder = new TextEncoder();

/**
 * ToolDb turns strings into bytes one UTF-16 code unit per byte (dropping the
 * high byte). Signatures and password keys depend on this, so we keep it.
 */
export function latin1ToBytes(str: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(str.length);
  for (let i = 0; i < str.length; i++) out[i] = str.charCodeAt(i) & 0xff;
  return out;
}

export function bytesToLatin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]!);
  return out;
}

/** UTF-8 bytes: what tool-db 2.6.6's stringToArrayBuffer (a TextEncoder) gives for signing and password keys. */
export function utf8ToBytes(str: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(str);
}

function utf8Encode(str: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(str);
}

function utf8Decode(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

export function base64FromBytes(bytes: Uint8Array): string {
  return btoa(bytesToLatin1(bytes));
}

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  return latin1ToBytes(atob(b64));
}

/**
 * ToolDb's uint8ToBase64: the bytes become a latin1 string which is then
 * UTF-8 encoded before base64 (bytes >= 0x80 take two bytes). Kept for
 * account-export compatibility with @tool-db/ecdsa-user.
 */
export function toolDbBytesToBase64(bytes: Uint8Array): string {
  return base64FromBytes(utf8Encode(bytesToLatin1(bytes)));
}

export function toolDbBase64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  return latin1ToBytes(utf8Decode(base64ToBytes(b64)));
}
