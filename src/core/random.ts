const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Random id of `length` alphanumerics, like ToolDb's textRandom (CSPRNG here). */
export function randomId(length = 10): string {
  const bytes = new Uint8Array(length);
  globalThis.crypto.getRandomValues(bytes);
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! % ALPHABET.length];
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
