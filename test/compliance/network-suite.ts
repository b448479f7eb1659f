/**
 * Shared compliance suite for network adapters (the contract in
 * src/network/network-adapter.ts), in the spirit of libp2p's
 * interface-compliance-tests. A transport passes if every test here passes:
 *
 *   import { networkAdapterSuite } from "../test/compliance/network-suite.js";
 *   networkAdapterSuite("MyTransport", {
 *     server: (opts) => startNode({ server: true, networkAdapter: MyTransport, ...opts }),
 *     client: (server, opts) => startNode({ networkAdapter: MyTransport, peers: server ? [addr(server)] : [], ...opts }),
 *     addressOf: (server) => addr(server),
 *   });
 *
 * The suite only drives nodes through the transport-independent API
 * (ToolDb events and hooks, `network.connectTo`, `network.peers`,
 * `network.dialTargets()`), so it holds for any transport built on
 * ToolDbNetworkAdapter.
 *
 * What it pins down:
 * - the handshake completes and both ends report the other's peer id
 *   (`peer-connect` event and `onPeerConnect` hook, `connect`/`onConnect` once);
 * - the other end closing fires `peer-disconnect`/`onPeerDisconnect`, and
 *   `disconnect`/`onDisconnect` when it was the last link;
 * - messages flow both ways (puts are stored on the other end, gets are answered);
 * - `connectTo` the same address twice makes one link;
 * - two links between the same pair of identities collapse into one, the
 *   same one on both ends (mutual dial; and two addresses of one node when
 *   the factory can make an alias);
 * - a topic mismatch closes the link, and the dialer's `dial-failed` event
 *   carries code 4001, the refusal reason, and `final: true`;
 * - `close()` is idempotent, closes every link (the other side sees it) and
 *   no event or hook fires after it was called.
 *
 * The tests are in network-suite-links.ts, -duplicates.ts and -closing.ts.
 */
import { afterEach, describe } from "node:test";
import type { ToolDb } from "../../src/index.js";
import type { ToolDbOptions } from "../../src/node/options.js";
import { withTimeout } from "../helpers/wait.js";
import { closingTests } from "./network-suite-closing.js";
import { type NetworkNodeFactory, type NetworkSuiteContext, T } from "./network-suite-context.js";
import { duplicateLinkTests } from "./network-suite-duplicates.js";
import { linkTests } from "./network-suite-links.js";

export type { NetworkAddress, NetworkNodeFactory } from "./network-suite-context.js";
// For transport-specific test files built on this suite.
export { peerIdOf, bothLinked, eventually, hookRecorder, lateEvents } from "./network-suite-context.js";

export function networkAdapterSuite(name: string, factory: NetworkNodeFactory): void {
  describe(`network adapter compliance: ${name}`, () => {
    const nodes: ToolDb[] = [];
    const cleanups: Array<() => Promise<void>> = [];
    const track = async (made: Promise<ToolDb>): Promise<ToolDb> => {
      const db = await made;
      nodes.push(db);
      return db;
    };
    const ctx: NetworkSuiteContext = {
      factory,
      server: (opts?: Partial<ToolDbOptions>) => track(factory.server(opts)),
      client: (srv?: ToolDb, opts?: Partial<ToolDbOptions>) => track(factory.client(srv, opts)),
      connect(from, to) {
        const { host, port } = factory.addressOf(to);
        from.network.connectTo(host, port);
      },
      cleanups,
    };

    afterEach(async () => {
      await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "nodes to close");
      for (const c of cleanups.splice(0)) await c();
    });

    linkTests(ctx);
    duplicateLinkTests(ctx);
    closingTests(ctx);
  });
}
