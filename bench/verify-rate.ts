import { EcdsaUser } from "../src/index.js";

/**
 * The machine's raw ECDSA P-256 verify rate through WebCrypto, with the same
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
  await Promise.all(items.map((m) => user.verifySignature(m)));
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const m = items[next++ % items.length]!;
        if (!(await user.verifySignature(m))) throw new Error("verify failed");
      }
    }),
  );
  return count / ((performance.now() - start) / 1000);
}
