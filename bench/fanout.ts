/**
 * One server, many clients (issue 10): fan-out of one writer's puts to N
 * subscribed clients (deliveries/s, put → last subscriber), memory per idle
 * verified client beside raw `ws` connections held by a plain ws server in
 * the same run, and handshakes/s. Clients are raw WebSockets doing the real
 * ToolDb handshake (a signed ping each), so the figures are the server's.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { EcdsaUser, signPeerRecord, clientIdOf } from "../src/index.js";
import { randomId } from "../src/core/random.js";
import { presign } from "./presign.js";
import { fmt, percentile } from "./stats.js";

interface Server {
  child: ChildProcess;
  port: number;
}

async function startServer(raw: boolean): Promise<Server> {
  const child = fork(fileURLToPath(new URL("./fanout-server.js", import.meta.url)), raw ? ["raw"] : [], { execArgv: ["--expose-gc"], stdio: "inherit" });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once("message", resolve));
  return { child, port };
}

function memory(server: Server): Promise<{ rss: number; heap: number }> {
  return new Promise((resolve) => {
    server.child.once("message", (m: { rss: number; heap: number }) => resolve(m));
    server.child.send({ type: "rss" });
  });
}

async function stop(server: Server): Promise<void> {
  const exited = new Promise((r) => server.child.once("exit", r));
  server.child.send({ type: "stop" });
  await exited;
}

/** Signed pings for `n` fresh identities (key generation is not part of any figure). */
async function identities(n: number, port: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += 256) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(256, n - i) }, async () => {
          const user = new EcdsaUser();
          await user.ready;
          const address = user.getAddress()!;
          const peer = await signPeerRecord(user, "bench-fanout", "127.0.0.1", 0, Date.now());
          return JSON.stringify({ type: "ping", id: randomId(), to: [clientIdOf(address)], clientId: clientIdOf(address), isServer: false, peer });
        }),
      )),
    );
  }
  void port;
  return out;
}

/** Opens `pings.length` links (or plain connections without pings), `parallel` at a time; resolves the sockets and the seconds taken. */
async function connect(port: number, pings: Array<string | undefined>, parallel = 200): Promise<{ sockets: WebSocket[]; seconds: number }> {
  const sockets: WebSocket[] = [];
  let next = 0;
  const start = performance.now();
  const one = (ping: string | undefined) =>
    new Promise<WebSocket>((resolve, reject) => {
      // Spread over 127.0.0.x source addresses: one address has only ~28,000 ephemeral ports.
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, { localAddress: `127.0.0.${2 + (sockets.length % 200)}` } as WebSocket.ClientOptions);
      ws.on("error", reject);
      ws.once("open", () => {
        if (!ping) return resolve(ws);
        ws.once("message", () => resolve(ws)); // the pong
        ws.send(ping);
      });
    });
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < pings.length) sockets.push(await one(pings[next++]));
    }),
  );
  return { sockets, seconds: (performance.now() - start) / 1000 };
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) => new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r(undefined) : (ws.once("close", r), ws.terminate())))));
}

export interface ConnectionFigures {
  clients: number;
  /** Server RSS and JS heap growth per connection (after a GC). */
  perClient: number;
  perClientHeap: number;
  perRawConnection: number;
  perRawConnectionHeap: number;
  handshakesPerSecond: number;
}

export async function connectionBenchmark(clients: number): Promise<ConnectionFigures> {
  const pings = await identities(clients, 0);
  const server = await startServer(false);
  const before = await memory(server);
  const verified = await connect(server.port, pings);
  const after = await memory(server);
  await closeAll(verified.sockets);
  await stop(server);

  const plain = await startServer(true);
  const plainBefore = await memory(plain);
  const open = await connect(plain.port, new Array<undefined>(clients).fill(undefined));
  const plainAfter = await memory(plain);
  await closeAll(open.sockets);
  await stop(plain);
  return {
    clients,
    perClient: (after.rss - before.rss) / clients,
    perClientHeap: (after.heap - before.heap) / clients,
    perRawConnection: (plainAfter.rss - plainBefore.rss) / clients,
    perRawConnectionHeap: (plainAfter.heap - plainBefore.heap) / clients,
    handshakesPerSecond: clients / verified.seconds,
  };
}

export interface FanoutFigures {
  subscribers: number;
  puts: number;
  deliveriesPerSecond: number;
  p50: number;
  p99: number;
}

export async function fanoutBenchmark(subscribers: number, puts: number, latencySamples: number): Promise<FanoutFigures> {
  const server = await startServer(false);
  const pings = await identities(subscribers + 1, server.port);
  const { sockets } = await connect(server.port, pings);
  const writer = sockets.pop()!;
  const author = new EcdsaUser();
  await author.ready;
  const records = await presign(author, puts + latencySamples, Date.now() - 600_000, "fan", 1);
  // n of the put → subscribers that got it; resolved when the last one has.
  const got = new Uint32Array(records.length);
  const waiters = new Map<number, () => void>();
  let delivered = 0;
  for (const ws of sockets) {
    ws.on("message", (data) => {
      const m = /"v":\{"n":(\d+)/.exec(String(data)); // the record's own "n" is its proof-of-work nonce
      if (!m) return;
      const n = Number(m[1]);
      delivered++;
      if (++got[n] === sockets.length) waiters.get(n)?.();
    });
  }
  // Everyone subscribes to the one key; wait until each got the (empty) answer window.
  for (const ws of sockets) ws.send(JSON.stringify({ type: "subscribe", id: randomId(), to: [], key: "fan0" }));
  await new Promise((r) => setTimeout(r, 500));
  const allGot = (n: number) => new Promise<void>((resolve) => (got[n] === sockets.length ? resolve() : waiters.set(n, resolve)));
  const put = (n: number) => writer.send(JSON.stringify({ type: "put", id: randomId(), to: [], data: records[n] }));

  // Throughput: every put in flight at once (the server paces by its socket buffers).
  const start = performance.now();
  const before = delivered;
  for (let n = 0; n < puts; n++) put(n);
  await allGot(puts - 1);
  const seconds = (performance.now() - start) / 1000;
  const deliveriesPerSecond = (delivered - before) / seconds;

  // Latency: one put at a time, until its last subscriber has it.
  const latencies: number[] = [];
  for (let n = puts; n < puts + latencySamples; n++) {
    const t = performance.now();
    put(n);
    await allGot(n);
    latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  await closeAll([...sockets, writer]);
  await stop(server);
  return { subscribers: sockets.length, puts, deliveriesPerSecond, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export function printFanoutFigures(f: FanoutFigures, out: (line: string) => void): void {
  out(`fan-out, 1 writer → ${f.subscribers.toLocaleString()} subscribed clients on one server: ${fmt(f.deliveriesPerSecond, 0)} deliveries/s (${f.puts.toLocaleString()} puts)`);
  out(`  put → last subscriber, one put at a time: p50 ${fmt(f.p50, 1)} ms, p99 ${fmt(f.p99, 1)} ms`);
}

export function printConnectionFigures(c: ConnectionFigures, out: (line: string) => void): void {
  out(
    `${c.clients.toLocaleString()} idle verified clients: ${fmt(c.perClient / 1024, 1)} KiB server RSS each (JS heap ${fmt(c.perClientHeap / 1024, 1)} KiB), raw ws connection ${fmt(c.perRawConnection / 1024, 1)} KiB each (heap ${fmt(c.perRawConnectionHeap / 1024, 1)} KiB); ratio ${fmt(c.perClient / c.perRawConnection, 2)} (aim ≤ 2); ${fmt(c.handshakesPerSecond, 0)} handshakes/s`,
  );
}
