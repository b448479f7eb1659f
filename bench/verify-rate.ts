import { type KeyObject, createPublicKey, verify } from "node:crypto";
import { EcdsaUser } from "../src/index.js";

const keys = new Map<string, KeyObject>();

/**
 * The raw engine the node verifies with on Node: OpenSSL's ECDSA P-256
 * through node:crypto (callback form, on libuv's pool), with the key
 * imported once per address; nothing of ours around it.
 */
export function rawVerify(m: { h: string; s: string; a: string }): Promise<boolean> {
  let key = keys.get(m.a);
  if (!key) keys.set(m.a, (key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: m.a.slice(0, 43), y: m.a.slice(43) }, format: "jwk" })));
  return new Promise((resolve, reject) =>
    verify("sha256", Buffer.from(m.h, "utf8"), { key: key!, dsaEncoding: "ieee-p1363" }, Buffer.from(m.s, "hex"), (err, valid) => (err ? reject(err) : resolve(valid))),
  );
}

/**
 * The machine's raw ECDSA P-256 verify rate (`rawVerify`), with the same
 * parallelism the node uses (many verifies in flight on libuv's pool).
 */
export async function measureVerifyRate(count = 20_000, inFlight = 256): Promise<number> {
  const user = new EcdsaUser();
  await user.ready;
  const address = user.getAddress()!;
  const items = await Promise.all(
    Array.from({ length: 64 }, async (_, i) => {
      const h = `${i}`.padStart(64, "0");
      return { h, a: address, s: await user.signData(h) };
    }),
  );
  await Promise.all(items.map(rawVerify));
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const m = items[next++ % items.length]!;
        if (!(await rawVerify(m))) throw new Error("verify failed");
      }
    }),
  );
  return count / ((performance.now() - start) / 1000);
}
