/**
 * The DHT half of a simulation, all real: a private bittorrent-dht network on
 * loopback, one `Discovery` per server announcing `topic -> its port`, then
 * a lookup from every server (its candidate list for DhtPeering) and from
 * fresh lookup-only nodes (what a DHTClient does), timed and counted.
 * Runs in real time; the mesh phase that follows runs on the virtual clock.
 */
import DHT from "bittorrent-dht";
import { Discovery } from "../src/discovery/discovery.js";
import type { PeerAddress } from "../src/discovery/peer-table.js";
import { SIM_HOST } from "./sim-node.js";

export interface DhtPhaseResult {
  /** Per server (by index): the addresses its own lookup returned. */
  candidates: PeerAddress[][];
  /** Lists returned to lookup-only nodes (clients). */
  clientCandidates: PeerAddress[][];
  announceMs: number;
  /** Announces that did not report done within the bound (a loaded machine; the server still runs). */
  announceTimeouts: number;
  /** Real ms from the start of a lookup-only join to its first lookup's end, per lookup. */
  lookupMs: number[];
  /** Share of the other announcers each server lookup and client lookup returned. */
  serverCompleteness: number[];
  clientCompleteness: number[];
  rssBytes: number;
}

const BATCH = 25;
const LOOKUP_TIMEOUT_MS = 30_000;

function waitFor<T>(register: (done: (value: T) => void) => void, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

export async function runDhtPhase(
  topic: string,
  ports: number[],
  clientLookups: number,
  progress: (line: string) => void,
): Promise<DhtPhaseResult> {
  const seed = new DHT({ bootstrap: false, timeout: 500 });
  await waitFor<void>((done) => seed.listen(0, SIM_HOST, () => done()), 5000, "DHT seed");
  const bootstrap = [`${SIM_HOST}:${(seed.address() as { port: number }).port}`];
  const options = { bootstrap, host: SIM_HOST, port: 0, timeout: 500, skipSelf: true };
  const servers: Discovery[] = [];
  const extra: Discovery[] = [];
  try {
    const started = performance.now();
    let announceTimeouts = 0;
    for (let i = 0; i < ports.length; i += BATCH) {
      const batch = ports.slice(i, i + BATCH).map((port) => {
        const d = new Discovery(options);
        servers.push(d);
        return waitFor<void>((done) => d.join(topic, port, () => done()), LOOKUP_TIMEOUT_MS, `announce of ${port}`).catch(() => {
          announceTimeouts++;
        });
      });
      await Promise.all(batch);
      progress(`dht: ${Math.min(i + BATCH, ports.length) - announceTimeouts}/${ports.length} servers announced (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    }
    const announceMs = performance.now() - started;
    const others = ports.length - 1;
    // Every server looks the topic up once more, now that all have announced.
    const serverCompleteness: number[] = [];
    for (let i = 0; i < servers.length; i += BATCH) {
      await Promise.all(
        // One more lookup on the server's own DHT node; what it finds lands in the Discovery's peer table.
        servers.slice(i, i + BATCH).map((d) => waitFor<void>((done) => d.dht.lookup(d.infoHashOf(topic), () => done()), LOOKUP_TIMEOUT_MS, "server lookup").catch(() => undefined)),
      );
    }
    const candidates = servers.map((d) => d.peers(topic));
    for (const list of candidates) serverCompleteness.push(others > 0 ? list.length / others : 1);
    // Lookup-only nodes, as a DHTClient: timed from join to the end of their first lookup.
    const lookupMs: number[] = [];
    const clientCandidates: PeerAddress[][] = [];
    const clientCompleteness: number[] = [];
    for (let i = 0; i < clientLookups; i++) {
      const d = new Discovery(options);
      extra.push(d);
      const ready = await waitFor<void>((done) => d.once("ready", () => done()), LOOKUP_TIMEOUT_MS, "client DHT node").then(() => true, () => false);
      if (!ready) continue;
      const t0 = performance.now();
      const looked = await waitFor<void>((done) => d.join(topic, () => done()), LOOKUP_TIMEOUT_MS, "client lookup").then(() => true, () => false);
      if (looked) lookupMs.push(performance.now() - t0);
      const list = d.peers(topic);
      clientCandidates.push(list);
      clientCompleteness.push(list.length / ports.length);
    }
    progress(`dht: lookups done (${servers.length} servers, ${clientLookups} clients)`);
    return { candidates, clientCandidates, announceMs, announceTimeouts, lookupMs, serverCompleteness, clientCompleteness, rssBytes: process.memoryUsage().rss };
  } finally {
    await Promise.all([...servers, ...extra].map((d) => d.destroy()));
    await new Promise<void>((resolve) => seed.destroy(() => resolve()));
  }
}
