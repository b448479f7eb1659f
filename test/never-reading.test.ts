/**
 * Peers that ask for a 900 KB record again and again and never read the
 * replies (issue 25): 100 on WebSocket and 20 on Hyperswarm against one
 * server process started with a 1 GiB heap. The server's one send budget
 * keeps what it queues bounded; it stays up, and a legitimate client links
 * and reads meanwhile; the attacking addresses end up banned. Checked by
 * the server's own counts, never by timings.
 */
import assert from "node:assert/strict";
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import Hyperswarm from "hyperswarm";
import { DEFAULT_LIMITS, ErrorCode, ToolDb } from "../src/index.js";
import { topicKey } from "../src/network/hyperswarm-network.js";
import { CloseCode } from "../src/network/connection.js";
import { FAST, closeAll, portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { hyperTestnet, type Testnet } from "./helpers/hyperdht-testnet.js";
import { RawLink, RawTcpLink, type RawStream, terminateRawLinks } from "./helpers/raw-peer.js";
import { waitFor } from "./helpers/wait.js";
import type { BudgetServerStats } from "./helpers/budget-server.js";

const T = 120_000;
const TOPIC = "never-reading";
const GETS_PER_LINK = 40;

/** Sends `type` to the server process and resolves with its answer of the same type. */
function ask<M extends { type: string }>(child: ChildProcess, type: string): Promise<M> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no "${type}" answer from the server within ${T} ms`)), T);
    const onMessage = (m: M) => {
      if (m.type === type) done(undefined, m);
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`the server exited (${code ?? signal})`));
    function done(err: Error | undefined, m?: M) {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send({ type });
  });
}

/** Stops reading: the socket is paused, so replies pile up on the server's side. */
function neverRead(link: RawLink | RawTcpLink): void {
  if (link instanceof RawLink) link.ws.pause();
  else link.socket.pause?.();
}

function askForBig(link: RawLink | RawTcpLink, n: number): void {
  for (let i = 0; i < GETS_PER_LINK; i++) link.send({ type: "get", id: `big-${n}-${i}`, to: [], key: "big" });
}

describe("peers that never read", () => {
  let testnet: Testnet | undefined;
  let server: ChildProcess | undefined;
  const swarms: Hyperswarm[] = [];

  after(async () => {
    terminateRawLinks();
    await Promise.all(swarms.map((s) => s.destroy()));
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server!.once("exit", r));
      server.send({ type: "stop" });
      const killer = setTimeout(() => server!.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await testnet?.destroy();
  });

  it("100 on WebSocket and 20 on Hyperswarm cannot make a 1 GiB-heap server run out of memory; a legitimate client links and reads", { timeout: 2 * T }, async (t) => {
    testnet = await hyperTestnet();
    const bootstrap = testnet.bootstrap.map((b) => `${b.host}:${b.port}`).join(",");
    const child = fork(fileURLToPath(new URL("./helpers/budget-server.js", import.meta.url)), [bootstrap, TOPIC], {
      execArgv: ["--max-old-space-size=1024"],
      stdio: "inherit",
    });
    server = child;
    const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`the server exited (${code})`))));
    exited.catch(() => undefined);
    const [{ port }] = (await Promise.race([waitFor(child, "message", T), exited])) as [{ port: number }];

    // 100 WebSocket peers from four addresses (25 each, under the per-IP cap).
    const ws: RawLink[] = [];
    for (let i = 0; i < 100; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => RawLink.connect(port, { topic: TOPIC, from: `127.0.0.${10 + ((i + j) % 4)}` })));
      ws.push(...batch);
    }
    // 20 Hyperswarm peers, each its own swarm (its own Noise key).
    const hs: RawTcpLink[] = [];
    for (let i = 0; i < 20; i++) {
      const swarm = new Hyperswarm({ dht: testnet.createNode() });
      swarms.push(swarm);
      swarm.on("connection", (s: { on(e: string, f: () => void): void }) => s.on("error", () => undefined));
      const connected = waitFor(swarm, "connection", T);
      swarm.join(topicKey(TOPIC), { server: false, client: true });
      const [socket] = (await connected) as [RawStream];
      hs.push(await (await RawTcpLink.over(socket, { topic: TOPIC })).handshake());
    }
    const attackers = [...ws, ...hs];

    // Then every one asks for the big record again and again and reads nothing.
    attackers.forEach((link, n) => {
      neverRead(link);
      askForBig(link, n);
    });

    // Meanwhile a legitimate client links and reads, the small record and the big one.
    const legit = new ToolDb({ topic: TOPIC, ...FAST, handshakeTimeout: T, peers: [{ host: "127.0.0.1", port }] });
    try {
      await legit.ready;
      await waitUntil(() => legit.isConnected, T, "the legitimate client to link");
      assert.equal(await legit.getData("small", false, T), "hello");
      assert.equal(((await legit.getData("big", false, T)) as string).length, 900 * 1024);
    } finally {
      await legit.close();
    }

    // The attackers keep asking; the server stays up and its queue within the budget.
    let stats = await ask<BudgetServerStats>(child, "stats");
    for (let round = 0; round < 5; round++) {
      for (const [n, link] of attackers.entries()) if (!link.isClosed) askForBig(link, 1000 * (round + 1) + n);
      await new Promise((r) => setTimeout(r, 500));
      stats = await ask<BudgetServerStats>(child, "stats");
    }
    const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
    t.diagnostic(`server RSS ${mib(stats.rss)}, heap ${mib(stats.heap)}, queued now ${mib(stats.queued)}, peak ${mib(stats.peakQueued)}; refusals ${JSON.stringify(stats.refusals)}`);
    assert.equal(child.exitCode, null, "the server is alive");
    // Read after each frame written: at most one frame (a 900 KB reply) beyond the budget before links are dropped.
    assert.ok(stats.peakQueued > 0, "replies were queued");
    assert.ok(stats.peakQueued <= DEFAULT_LIMITS.maxSendBuffered + 1048576, `peak queue ${mib(stats.peakQueued)}`);
    // Without the budget the queue reaches gigabytes: either it held every link's asks back below it, or it dropped the largest.
    assert.ok((stats.refusals[ErrorCode.MEMORY_LIMIT] ?? 0) > 0 || stats.peakQueued < DEFAULT_LIMITS.maxSendBuffered, "over the budget, links were dropped");
    // Links that stay over their backlog without reading are dropped after a few seconds, and an address whose
    // links were, again and again, is banned: it cannot refill the queue under fresh identities.
    let banned: string[] = [];
    await waitUntil(async () => (banned = (await ask<BudgetServerStats>(child, "stats")).bannedHosts).length > 0, T, "an attacking address to be banned");
    t.diagnostic(`banned: ${banned.join(", ")}`);
    const again = await RawLink.open(port, { topic: TOPIC, from: banned[0]! });
    const { code } = await again.waitClose(T);
    assert.equal(code, CloseCode.BANNED, "a new link from a banned attacking address is refused as banned");
  });

  it("a peer that reads is never dropped for a burst of large replies, nor banned, round after round", { timeout: T }, async () => {
    const server = await startServer({ topic: "burst" });
    try {
      await server.putData("big", "x".repeat(900 * 1024));
      const refused: string[] = [];
      server.on("refused", (e) => refused.push(`${e.code}: ${e.reason}`));
      // 32 gets at once (maxOutstandingPerPeer) is about 29 MiB of replies written in one turn, over the
      // hard cap per link; the peer reads them, so its queue drains and it is not taken for a non-reader.
      for (let round = 0; round < 4; round++) {
        const link = await RawLink.connect(portOf(server), { topic: "burst", from: "127.0.0.20" });
        const ids = Array.from({ length: 32 }, (_, i) => `burst-${round}-${i}`);
        const replies = ids.map((id) => link.next((f) => f.type === "put" && f.id === id, T));
        for (const id of ids) link.send({ type: "get", id, to: [], key: "big" });
        await Promise.all(replies);
        link.terminate();
      }
      assert.deepEqual(refused.filter((r) => r.startsWith(ErrorCode.MEMORY_LIMIT) || r.startsWith(ErrorCode.BANNED)), []);
    } finally {
      await closeAll(server);
    }
  });
});
