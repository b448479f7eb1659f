/**
 * One server, many clients (issue 10): fan-out of one writer's puts to N
 * subscribed clients (deliveries/s, put → last subscriber). Clients are raw
 * WebSockets doing the real ToolDb handshake (a signed ping each), so the
 * figures are the server's. Idle connections: bench/connections.ts.
 */
import { EcdsaUser } from "../src/index.js";
import { randomId } from "../src/base/random.js";
import { closeAll, connect, identities, startServer, stop } from "./one-server.js";
import { presign } from "./presign.js";
import { fmt, percentile } from "./stats.js";

export interface FanoutFigures {
  subscribers: number;
  puts: number;
  deliveriesPerSecond: number;
  p50: number;
  p99: number;
}

export async function fanoutBenchmark(subscribers: number, puts: number, latencySamples: number): Promise<FanoutFigures> {
  const server = await startServer("tooldb");
  const pings = await identities(subscribers + 1);
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
