/**
 * Relayed verified puts over one transport: writer → server → subscriber,
 * all three nodes in this process. Throughput with a window of 1000 puts in
 * flight, and p50/p99 latency one put at a time (after a warm-up of 1000).
 * The caller builds the three nodes, so each transport is measured by the
 * same code.
 */
import { EcdsaUser, type ToolDb } from "../src/index.js";
import { presign } from "./presign.js";
import { RelayLoop } from "./relay-loop.js";
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
  const loop = await RelayLoop.start(writer, subscriber, records, keyPrefix, 50, keyPrefix);
  const unloaded = await loop.oneAtATime(warm);
  const seconds = (await loop.windowed(warm, warm + total, 1000)) / 1000;
  await Promise.all([writer.close(), subscriber.close(), server.close()]);
  return { putsPerSecond: total / seconds, p50: percentile(unloaded, 50), p99: percentile(unloaded, 99) };
}
