/**
 * Relayed verified puts over one transport: writer → server → subscriber,
 * all three nodes in this process. Throughput with a window of 1000 puts in
 * flight, and p50/p99 latency one put at a time (after a warm-up of 1000).
 * The caller builds the three nodes, so each transport is measured by the
 * same code.
 */
import { EcdsaUser, type ToolDb } from "../src/index.js";
import { presign } from "./presign.js";
import { percentile } from "./stats.js";

export interface RelayFigures {
  putsPerSecond: number;
  p50: number;
  p99: number;
}

export interface RelayNodes {
  server: ToolDb;
  writer: ToolDb;
  subscriber: ToolDb;
}

const once = (emitter: { once(e: string, l: () => void): unknown }, event: string) => new Promise<void>((resolve) => emitter.once(event, () => resolve()));

/** `start` returns the server and both clients; this waits until both clients are linked, measures, closes all. */
export async function relayedPuts(start: () => Promise<RelayNodes>, total: number, keyPrefix: string): Promise<RelayFigures> {
  const { server, writer, subscriber } = await start();
  await Promise.all([writer, subscriber].map((db) => (db.network.peers.length > 0 ? undefined : once(db, "connect"))));
  const author = new EcdsaUser();
  await author.ready;
  const warm = 1000;
  const records = await presign(author, total + warm, Date.now() - 10 * 60_000, keyPrefix, 50);
  let received = 0;
  const sentAt = new Float64Array(records.length);
  const latencies: number[] = [];
  let wake: (() => void) | undefined;
  for (let k = 0; k < 50; k++) {
    subscriber.addKeyListener(`${keyPrefix}${k}`, (r) => {
      latencies.push(performance.now() - sentAt[(r.v as { n: number }).n]!);
      received++;
      wake?.();
    });
    await subscriber.subscribeData(`${keyPrefix}${k}`);
  }
  await new Promise((r) => setTimeout(r, 200));
  const send = (n: number) => {
    sentAt[n] = performance.now();
    writer.network.sendToAll({ type: "put", id: `${keyPrefix}${n}`, data: records[n]! });
  };
  const reached = async (target: number) => {
    while (received < target) await new Promise<void>((r) => (wake = r));
  };
  for (let n = 0; n < warm; n++) {
    send(n);
    await reached(n + 1);
  }
  const unloaded = [...latencies].sort((a, b) => a - b);
  const window = 1000;
  const began = performance.now();
  let sent = 0;
  while (sent < total) {
    while (sent < total && sent - (received - warm) < window) send(warm + sent++);
    await reached(Math.min(warm + sent, warm + sent - window / 2));
  }
  await reached(warm + total);
  const seconds = (performance.now() - began) / 1000;
  await Promise.all([writer.close(), subscriber.close(), server.close()]);
  return { putsPerSecond: total / seconds, p50: percentile(unloaded, 50), p99: percentile(unloaded, 99) };
}
