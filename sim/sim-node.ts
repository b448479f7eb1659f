/**
 * Nodes of a simulation: the shipping ToolDb (handshake, relay, sync, limits)
 * with a MemoryStore, the in-memory transport, the virtual clock and a
 * seeded random; only the user adapter is wrapped, to count signature
 * checks per record hash and node.
 */
import { EcdsaUser, MemoryStore, ToolDb, type ToolDbOptions } from "../src/index.js";
export { seededRandom } from "../src/base/random.js";
import type { SignedHash } from "../src/users/user-adapter.js";
import type { MemoryFabric } from "./memory-network.js";
import type { SimClock } from "./sim-clock.js";
import type { AsyncWork } from "./async-work.js";

/** Signature checks by record hash, per node (peer-record checks of handshakes have other hashes). */
export class VerifyCounter {
  private readonly byNode = new WeakMap<object, Map<string, number>>();
  total = 0;

  count(node: object, hash: string): void {
    let map = this.byNode.get(node);
    if (!map) this.byNode.set(node, (map = new Map()));
    map.set(hash, (map.get(hash) ?? 0) + 1);
    this.total++;
  }

  of(node: object, hash: string): number {
    return this.byNode.get(node)?.get(hash) ?? 0;
  }

  forget(hash: string, nodes: Iterable<object>): void {
    for (const node of nodes) this.byNode.get(node)?.delete(hash);
  }
}

/** EcdsaUser that reports every signature check to `counter` under its node, and to `work` while it runs. */
function countingUser(counter: VerifyCounter, work: AsyncWork): ToolDbOptions["userAdapter"] {
  return class CountingUser extends EcdsaUser {
    private readonly node: object;
    constructor(db?: unknown) {
      super(db);
      this.node = (db as object) ?? this;
    }
    override verifySignature(message: SignedHash): Promise<boolean> {
      if (message && typeof message.h === "string") counter.count(this.node, message.h);
      return work.track(super.verifySignature(message));
    }
  };
}

export interface SimWorld {
  clock: SimClock;
  fabric: MemoryFabric;
  topic: string;
  random: () => number;
  verifications: VerifyCounter;
  /** Extra ToolDb options for every node (e.g. the broadcast mode). */
  db?: Partial<ToolDbOptions>;
}

/** Where server `i` listens: distinct ports on 127.0.0.1, as the DHT reports them. */
export const SIM_HOST = "127.0.0.1";
export function serverPort(i: number): number {
  return 20_000 + i;
}

let storeSeq = 0;

export function createNode(world: SimWorld, server: boolean, port: number): ToolDb {
  return new ToolDb({
    topic: world.topic,
    server,
    host: SIM_HOST,
    port,
    networkAdapter: world.fabric.transport(),
    storageAdapter: MemoryStore,
    userAdapter: countingUser(world.verifications, world.clock.work),
    storageName: `sim-${++storeSeq}`,
    clock: world.clock,
    random: world.random,
    // The shipping heartbeat (10 s): a crashed node or a cut path is noticed as on WebSocket.
    ...world.db,
  });
}
