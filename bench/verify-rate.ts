import { type KeyObject, createPublicKey, verify } from "node:crypto";
import { cpus } from "node:os";
import { Worker } from "node:worker_threads";
import { EcdsaUser } from "../src/index.js";

const keys = new Map<string, KeyObject>();

export interface SignedHash {
  h: string;
  s: string;
  a: string;
}

/**
 * The raw engine the node verifies with on Node: OpenSSL's ECDSA P-256
 * through node:crypto (callback form, on libuv's pool), with the key
 * imported once per address; nothing of ours around it.
 */
export function rawVerify(m: SignedHash): Promise<boolean> {
  let key = keys.get(m.a);
  if (!key) keys.set(m.a, (key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: m.a.slice(0, 43), y: m.a.slice(43) }, format: "jwk" })));
  return new Promise((resolve, reject) =>
    verify("sha256", Buffer.from(m.h, "utf8"), { key: key!, dsaEncoding: "ieee-p1363" }, Buffer.from(m.s, "hex"), (err, valid) => (err ? reject(err) : resolve(valid))),
  );
}

/** A thread that verifies the lists it is sent synchronously (node:crypto, keys imported once) and answers how many failed. */
const THREAD = `
const { parentPort } = require("node:worker_threads");
const { createPublicKey, verify } = require("node:crypto");
const keys = new Map();
parentPort.on("message", (list) => {
  let bad = 0;
  for (const m of list) {
    let key = keys.get(m.a);
    if (!key) keys.set(m.a, (key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: m.a.slice(0, 43), y: m.a.slice(43) }, format: "jwk" })));
    if (!verify("sha256", Buffer.from(m.h, "utf8"), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(m.s, "hex"))) bad++;
  }
  parentPort.postMessage(bad);
});`;

/**
 * The other raw way to verify on every core: one thread per core, each
 * verifying its share synchronously with node:crypto. Which of the two is
 * faster depends on the machine; the benches take the faster as the floor.
 */
export class ThreadVerifier {
  private readonly threads = Array.from({ length: cpus().length }, () => new Worker(THREAD, { eval: true }));

  /** Verifies `list` split evenly over the threads; resolves the number that failed. */
  async verify(list: SignedHash[]): Promise<number> {
    const per = Math.ceil(list.length / this.threads.length);
    const counts = await Promise.all(
      this.threads.map(
        (thread, i) =>
          new Promise<number>((resolve) => {
            thread.once("message", resolve);
            thread.postMessage(list.slice(i * per, (i + 1) * per));
          }),
      ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.terminate()));
  }
}

async function signedSample(): Promise<SignedHash[]> {
  const user = new EcdsaUser();
  await user.ready;
  const address = user.getAddress()!;
  return Promise.all(
    Array.from({ length: 64 }, async (_, i) => {
      const h = `${i}`.padStart(64, "0");
      return { h, a: address, s: await user.signData(h) };
    }),
  );
}

/**
 * The machine's raw ECDSA P-256 verify rate on all cores: `rawVerify` with
 * many verifies in flight on libuv's pool, and `ThreadVerifier`; both are
 * returned, the faster is the floor.
 */
export async function measureVerifyRate(count = 20_000, inFlight = 256): Promise<{ pool: number; threads: number; best: number }> {
  const items = await signedSample();
  await Promise.all(items.map(rawVerify));
  let next = 0;
  let start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const m = items[next++ % items.length]!;
        if (!(await rawVerify(m))) throw new Error("verify failed");
      }
    }),
  );
  const pool = count / ((performance.now() - start) / 1000);
  const verifier = new ThreadVerifier();
  const list = Array.from({ length: count }, (_, i) => items[i % items.length]!);
  await verifier.verify(items);
  start = performance.now();
  if ((await verifier.verify(list)) !== 0) throw new Error("verify failed");
  const threads = count / ((performance.now() - start) / 1000);
  await verifier.close();
  return { pool, threads, best: Math.max(pool, threads) };
}
