/**
 * A small simulated mesh for tests: shipping ToolDb servers and clients on
 * the simulator's in-memory transport and virtual clock (sim/), each server
 * linking within the server mesh's degree bounds from a shuffled list, as
 * DhtPeering does with a DHT lookup's answer. Puts are followed with the simulator's PutTracker.
 */
import { instrumentCrypto } from "../../sim/async-work.js";
import { DEFAULT_MIN_SERVER_LINKS } from "../../src/peering/server-mesh.js";
import { SimMesh, type MeshOptions, type SimNode } from "../../sim/mesh.js";
import { PutTracker } from "../../sim/put-tracker.js";
import { seededRandom } from "../../sim/sim-node.js";
import { shuffled } from "../../sim/stats.js";
import type { ToolDbOptions } from "../../src/node/options.js";

export interface TestMesh {
  mesh: SimMesh;
  tracker: PutTracker;
  servers: SimNode[];
  clients: SimNode[];
  /** Issues `count` puts from the clients in turn, `everyMs` apart, then lets `settleMs` pass. */
  puts(count: number, prefix: string, everyMs?: number, settleMs?: number): Promise<string[]>;
  close(): Promise<void>;
}

/** `serverOptions(i)` gives server i its own ToolDb options (e.g. an older relay). */
export async function testMesh(
  servers: number,
  clients: number,
  serverOptions: (i: number) => Partial<ToolDbOptions> = () => ({}),
  seed = 1,
  rotation?: MeshOptions["rotation"],
): Promise<TestMesh> {
  instrumentCrypto();
  const random = seededRandom(seed);
  const mesh = new SimMesh({ topic: "sim-test", delayMs: 20, random, serverLinks: DEFAULT_MIN_SERVER_LINKS, clientLinks: 2, rotation });
  const tracker = new PutTracker(() => mesh.clock.now(), mesh.world.verifications);
  mesh.fabric.observer = (to, frame) => tracker.frame(to, frame);
  const addresses = Array.from({ length: servers }, (_, i) => SimMesh.address(i));
  for (let i = 0; i < servers; i++) {
    mesh.world.db = serverOptions(i);
    tracker.watchServer(await mesh.addServer(shuffled(addresses, random)));
  }
  mesh.world.db = undefined;
  await mesh.clock.advance(3000);
  for (let j = 0; j < clients; j++) tracker.watchClient(await mesh.addClient(shuffled(addresses, random)), () => mesh.liveServers);
  await mesh.clock.advance(1000);
  return {
    mesh,
    tracker,
    servers: mesh.servers,
    clients: mesh.clients,
    async puts(count, prefix, everyMs = 200, settleMs = 3000) {
      const hashes: string[] = [];
      for (let i = 0; i < count; i++) {
        const client = mesh.clients[i % mesh.clients.length]!;
        const sent = client.db.putData(`${prefix}-${i}`, { i });
        await mesh.clock.advance(0);
        hashes.push(((await sent).data as { h: string }).h);
        await mesh.clock.advance(everyMs);
      }
      await mesh.clock.advance(settleMs);
      tracker.checkComplete(mesh.liveServers);
      return hashes;
    },
    close: () => mesh.close(),
  };
}
