/**
 * tool-db 2.6.6's lifecycle events, hooks and error texts, with listeners
 * written for 2.6.6 run unchanged on tooldb-dht and, where 2.6.6 can run
 * them, on a real tool-db 2.6.6 node too.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ToolDb } from "../src/index.js";
import { closeAll, FAST, portOf, startServer } from "./helpers/nodes.js";
import { startLegacyNode } from "./interop/legacy-node.js";
import { withTimeout } from "./helpers/wait.js";

const T = 10_000;

/** What a 2.6.6 app does with the connection hooks: note the peer, then check it in onConnect. */
function hookOrder(db: { onPeerConnect: (id: string) => void; onConnect: () => void }): Promise<string[]> {
  const calls: string[] = [];
  return new Promise((resolve) => {
    db.onPeerConnect = (id) => calls.push(`peer:${typeof id}`);
    db.onConnect = () => {
      calls.push("connect");
      resolve([...calls]);
    };
  });
}

describe("tool-db 2.6.6 events, hooks and error texts", () => {
  it("`init` fires after ready with the user's address, as on 2.6.6", async () => {
    const db = new ToolDb({ topic: "test" });
    const order: string[] = [];
    db.on("ready", () => order.push("ready"));
    const init = new Promise<string | undefined>((resolve) => db.on("init", (address) => resolve(address)));
    try {
      const address = await withTimeout(init, T, "init");
      order.push("init");
      assert.deepEqual(order, ["ready", "init"]);
      assert.equal(address, db.userAccount.getAddress());
      assert.match(address ?? "", /^[A-Za-z0-9_-]{86}$/);
    } finally {
      await db.close();
    }
    const legacy = await startLegacyNode(`init-${process.pid}`);
    try {
      // 2.6.6 emitted it during start-up; its argument is the same kind of address.
      assert.match(legacy.db.userAccount.getAddress() ?? "", /^[A-Za-z0-9_-]{86}$/);
    } finally {
      await legacy.close();
    }
  });

  it("onPeerConnect comes before onConnect, on ours as on a 2.6.6 client", async () => {
    const server = await startServer();
    const client = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    try {
      const ours = await withTimeout(hookOrder(client), T, "our hooks");
      assert.deepEqual(ours, ["peer:string", "connect"]);
    } finally {
      await closeAll(client, server);
    }
    const legacyServer = await startLegacyNode(`hooks-${process.pid}`, { server: true });
    try {
      const t = await import("tool-db");
      const u = await import("@tool-db/ecdsa-user");
      const { ToolDbWsAdapter, MemoryToolDbStore } = await import("./interop/tooldb-ws-adapter.js");
      const legacyClient = new t.default.ToolDb({
        topic: `hooks-${process.pid}`,
        server: false,
        peers: [{ host: "127.0.0.1", port: legacyServer.net.port! }],
        networkAdapter: ToolDbWsAdapter,
        storageAdapter: MemoryToolDbStore,
        userAdapter: u.default.default,
        storageName: `hooks-client-${process.pid}`,
        pow: 0,
      });
      try {
        const theirs = await withTimeout(hookOrder(legacyClient as never), T, "2.6.6 hooks");
        assert.deepEqual(theirs, ["peer:string", "connect"], "2.6.6 calls onPeerConnect first");
      } finally {
        await (legacyClient.network as unknown as { close(): Promise<void> }).close();
        await legacyClient.close();
      }
    } finally {
      await legacyServer.close();
    }
  });

  it("a server function that throws returns 2.6.6's text (\"Error: Invalid arguments\")", async () => {
    const fn = async (args: { n?: unknown }) => {
      if (typeof args?.n !== "number") throw new Error("Invalid arguments");
      return args.n * 2;
    };
    const legacyServer = await startLegacyNode(`fn-${process.pid}`, { server: true });
    const legacyClient = await startLegacyNode(`fn-${process.pid}`, { peers: [{ host: "127.0.0.1", port: legacyServer.net.port! }] });
    const server = await startServer();
    const client = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    try {
      legacyServer.db.addServerFunction("double", fn);
      server.addServerFunction("double", fn);
      await withTimeout(new Promise<void>((resolve) => client.once("connect", () => resolve())), T, "client link");
      const theirs = await legacyClient.db.doFunction("double", { n: "x" });
      const ours = await client.doFunction("double", { n: "x" });
      assert.deepEqual(theirs, { code: "ERR", return: "Error: Invalid arguments" });
      assert.deepEqual(ours, theirs);
      assert.deepEqual(await client.doFunction("double", { n: 2 }), { code: "OK", return: 4 });
    } finally {
      await closeAll(client, server);
      await legacyClient.close();
      await legacyServer.close();
    }
  });
});
