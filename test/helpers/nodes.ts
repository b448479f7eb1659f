import { ToolDb, type ToolDbOptions } from "../../src/index.js";

/** Fast, deterministic network timings for tests (no sleeping for luck). */
export const FAST: Partial<ToolDbOptions> = { wait: 20, maxReconnectDelay: 200, random: () => 0, handshakeTimeout: 2000 };

export async function startServer(opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  const db = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "test", ...FAST, ...opts });
  await db.ready;
  return db;
}

export function portOf(db: ToolDb): number {
  const port = (db.network as unknown as { port?: number }).port;
  if (!port) throw new Error("node is not listening");
  return port;
}

export async function startClient(servers: ToolDb[], opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  const db = new ToolDb({ topic: "test", ...FAST, ...opts, peers: servers.map((s) => ({ host: "127.0.0.1", port: portOf(s) })) });
  await db.ready;
  await waitUntil(() => db.network.peers.length >= servers.length, 5000, "client links");
  return db;
}

/** Links server `a` to server `b` and waits until both see the link. */
export async function linkServers(a: ToolDb, b: ToolDb, ms = 5000): Promise<void> {
  a.network.connectTo("127.0.0.1", portOf(b));
  await waitUntil(
    () => a.network.peers.some((p) => p.address === b.nodeAddress()) && b.network.peers.some((p) => p.address === a.nodeAddress()),
    ms,
    "server link",
  );
}

/** Polls a condition on the event loop's own pace; fails after `ms`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function closeAll(...nodes: Array<ToolDb | undefined>): Promise<void> {
  await Promise.all(nodes.map((n) => n?.close()));
}
