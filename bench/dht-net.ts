/**
 * Benchmark helpers: a private bittorrent-dht network on loopback, and a
 * guard that keeps every UDP datagram of this process on loopback.
 *
 * Every node of the network gets an explicit bootstrap (the seed has
 * `bootstrap: false`) and is bound to its own 127.0.0.x address, so nothing
 * ever contacts the public mainline routers.
 */
import dgram from "node:dgram";
import DHT from "bittorrent-dht";
import { destroyDht, dhtEvent } from "../test/helpers/dht-events.js";

export interface LoopbackDht {
  /** 'host:port' of the seed: the `bootstrap` option of every further node. */
  bootstrap: string[];
  /** All nodes, seed first. */
  nodes: DHT[];
  /**
   * Drops a node that left (e.g. a benchmark peer) from every routing table,
   * and remembers it for sweep(): so that later runs never wait on it.
   */
  forget(nodeId: Buffer): void;
  /**
   * Removes every forgotten node again: bittorrent-dht can re-add one later
   * (e.g. a node held as the swap candidate of a bucket-full ping check).
   * Returns the routing-table entries of non-members found before and
   * left after the sweep (summed over all nodes).
   */
  sweep(): { before: number; after: number };
  /**
   * Adds `count` nodes that join (so other nodes list them) and then stop
   * without being forgotten, as departed nodes do on the real DHT: queries to
   * them now wait for the k-rpc timeout. Returns the routing-table entries of
   * non-members afterwards, summed over all nodes.
   */
  addDepartedNodes(count: number): Promise<number>;
  destroy(): Promise<void>;
}

/** First address of the network; node i binds 127.0.0.(FIRST_HOST + i). */
const FIRST_HOST = 10;


/**
 * Starts `size` nodes (seed + size-1 bootstrapped from it, one at a time so
 * that each learns the earlier ones) on 127.0.0.10, .11, ...
 */
export async function createLoopbackDht(size = 50, timeout = 5000): Promise<LoopbackDht> {
  if (size < 3 || FIRST_HOST + size > 255) throw new RangeError("size must be in 3..245");
  const nodes: DHT[] = [];
  const destroy = async () => {
    await Promise.all(nodes.map(destroyDht));
  };
  try {
    const seed = new DHT({ bootstrap: false });
    nodes.push(seed);
    seed.on("error", () => undefined);
    const up = dhtEvent(seed, "listening", timeout);
    seed.listen(0, `127.0.0.${FIRST_HOST}`);
    await up;
    const bootstrap = [`127.0.0.${FIRST_HOST}:${seed.address().port}`];
    for (let i = 1; i < size; i++) {
      const dht = new DHT({ bootstrap });
      nodes.push(dht);
      dht.on("error", () => undefined);
      const ready = dhtEvent(dht, "ready", timeout);
      dht.listen(0, `127.0.0.${FIRST_HOST + i}`);
      await ready;
    }
    const members = new Set(nodes.map((n) => `${n.address().address}:${n.address().port}`));
    const gone: Buffer[] = [];
    const strangers = () => {
      let count = 0;
      for (const n of nodes) for (const e of n.toJSON().nodes) if (!members.has(`${e.host}:${e.port}`)) count++;
      return count;
    };
    const sweep = () => {
      const before = strangers();
      for (const n of nodes) for (const id of gone) n.removeNode(id);
      return { before, after: before === 0 ? 0 : strangers() };
    };
    const addDepartedNodes = async (count: number) => {
      if (count < 0 || nodes.length + count > 255 - FIRST_HOST) throw new RangeError("too many departed nodes");
      const extra: DHT[] = [];
      try {
        for (let i = 0; i < count; i++) {
          const dht = new DHT({ bootstrap });
          extra.push(dht);
          dht.on("error", () => undefined);
          const ready = dhtEvent(dht, "ready", timeout);
          dht.listen(0, `127.0.0.${FIRST_HOST + nodes.length + i}`);
          await ready;
        }
      } finally {
        await Promise.all(extra.map(destroyDht));
      }
      return strangers();
    };
    return {
      bootstrap,
      nodes,
      addDepartedNodes,
      forget: (nodeId) => {
        gone.push(Buffer.from(nodeId));
        for (const n of nodes) n.removeNode(nodeId);
      },
      sweep,
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === "::1" || address === "localhost" || address === "::ffff:127.0.0.1";
}

/**
 * Until the returned function is called, drops (and records) every UDP
 * datagram this process would send to a non-loopback address: a second
 * line of defence behind the explicit bootstrap lists.
 */
export function guardUdpToLoopback(): { blocked: string[]; restore(): void } {
  const blocked: string[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const proto = dgram.Socket.prototype as any;
  const original = proto.send as (...args: unknown[]) => void;
  proto.send = function guardedSend(this: dgram.Socket, ...args: unknown[]) {
    // send(msg, [offset, length,] port, [address,] [callback]): the address is the only string argument.
    const address = args.slice(1).find((a): a is string => typeof a === "string");
    if (address !== undefined && !isLoopback(address)) {
      blocked.push(address);
      const cb = args[args.length - 1];
      if (typeof cb === "function") process.nextTick(cb, new Error(`bench guard: blocked UDP send to ${address}`));
      return;
    }
    return original.apply(this, args);
  };
  return {
    blocked,
    restore: () => {
      proto.send = original;
    },
  };
}
