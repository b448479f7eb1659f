/**
 * A private bittorrent-dht network on loopback for tests: one seed
 * (bootstrap: false) plus nodes bootstrapped from it, every node bound
 * explicitly so nothing ever contacts the public routers.
 */
import { createSocket } from "node:dgram";
import DHT, { type DhtOptions } from "bittorrent-dht";
import { destroyDht, dhtEvent } from "./dht-events.js";

export interface DhtTestnet {
  /** 'host:port' of the seed, for the `bootstrap` option of further nodes. */
  bootstrap: string[];
  nodes: DHT[];
  /**
   * An extra plain bittorrent-dht node (not part of `nodes`) bound to `host`
   * and bootstrapped from the seed; resolved once ready, destroyed with the net.
   */
  createNode(host?: string, opts?: Omit<DhtOptions, "bootstrap">): Promise<DHT>;
  destroy(): Promise<void>;
}

export interface DhtTestnetOptions {
  /** Loopback address to bind. Default '127.0.0.1'. */
  host?: string;
  /** Bound (ms) on waiting for each node. Default 5000. */
  timeout?: number;
}

/** Starts `size` (>= 3: 2-node nets are flaky) nodes and waits until all are bootstrapped. */
export async function createDhtTestnet(size = 3, options: DhtTestnetOptions = {}): Promise<DhtTestnet> {
  if (size < 3) throw new RangeError("use at least 3 nodes: a node never returns itself, so 2-node nets are flaky");
  const host = options.host ?? "127.0.0.1";
  const timeout = options.timeout ?? 5000;
  const all: DHT[] = [];
  const destroyAll = async () => {
    await Promise.all(all.map(destroyDht));
  };

  try {
    const seed = new DHT({ bootstrap: false, timeout: 500 });
    all.push(seed);
    const seedUp = dhtEvent(seed, "listening", timeout);
    seed.listen(0, host);
    await seedUp;
    const bootstrap = [`${host}:${seed.address().port}`];

    const start = async (bindHost: string, opts: Omit<DhtOptions, "bootstrap"> = {}): Promise<DHT> => {
      const dht = new DHT({ timeout: 500, ...opts, bootstrap });
      all.push(dht);
      const ready = dhtEvent(dht, "ready", timeout);
      dht.listen(0, bindHost);
      await ready;
      return dht;
    };

    // One at a time so each later node learns the earlier ones through the seed.
    const nodes = [seed];
    for (let i = 1; i < size; i++) nodes.push(await start(host));

    return {
      bootstrap,
      nodes,
      createNode: (bindHost = host, opts) => start(bindHost, opts),
      destroy: destroyAll,
    };
  } catch (err) {
    await destroyAll();
    throw err;
  }
}

/** Anything with on/off, e.g. a TypedEmitter or an EventEmitter (typed loosely on purpose). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;
interface Listenable {
  on(event: string, listener: AnyListener): unknown;
  off(event: string, listener: AnyListener): unknown;
}

/**
 * Resolves with the arguments of the first `event` for which `filter` holds;
 * rejects after `timeout` ms. Never leaves a timer behind.
 */
export function waitForEvent<A extends unknown[] = unknown[]>(
  emitter: Listenable,
  event: string,
  timeout: number,
  filter: (...args: A) => boolean = () => true,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no '${event}' within ${timeout} ms`));
    }, timeout);
    const listener = (...args: A) => {
      if (!filter(...args)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args);
    };
    emitter.on(event, listener);
  });
}

/** A UDP port on 127.0.0.1 nobody answers on: a dead private bootstrap (mainline or HyperDHT). */
export async function silentUdpPort(): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
  const { port } = socket.address();
  await new Promise<void>((r) => socket.close(() => r()));
  return port;
}
