/**
 * One server in a child process (bench/fanout-server.ts) and many raw
 * WebSocket clients in this one, for the fan-out and connection benchmarks:
 * the server's memory is its own. Clients do the real ToolDb handshake (a
 * signed ping each) with pings signed beforehand.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { EcdsaUser, signPeerRecord, clientIdOf } from "../src/index.js";
import { randomId } from "../src/base/random.js";

export interface Server {
  child: ChildProcess;
  port: number;
}

export interface Memory {
  rss: number;
  heap: number;
}

/** Node flags of a server process: `--expose-gc` (memory is sampled after a full GC) and what the caller adds. */
const SERVER_FLAGS = ["--expose-gc"];

/**
 * What the child runs: a ToolDb server, or a plain `ws` server with the same
 * ws options that only holds connections (`raw`) or also does a
 * handshake's work on each and keeps nothing of it (`raw-verify`).
 */
export type ServerKind = "tooldb" | "raw" | "raw-verify";

export async function startServer(kind: ServerKind, flags: string[] = []): Promise<Server> {
  const execArgv = [...SERVER_FLAGS, ...flags];
  const child = fork(fileURLToPath(new URL("./fanout-server.js", import.meta.url)), kind === "tooldb" ? [] : [kind], { execArgv, stdio: "inherit" });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once("message", resolve));
  return { child, port };
}

/** The server's RSS and JS heap in use, after a full GC. */
export function memory(server: Server): Promise<Memory> {
  return new Promise((resolve) => {
    server.child.once("message", (m: Memory) => resolve(m));
    server.child.send({ type: "rss" });
  });
}

export async function stop(server: Server): Promise<void> {
  const exited = new Promise((r) => server.child.once("exit", r));
  server.child.send({ type: "stop" });
  await exited;
}

/** Signed pings for `n` fresh identities (key generation is not part of any figure). */
export async function identities(n: number, progress?: (line: string) => void): Promise<string[]> {
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
    if (progress && out.length % 2048 === 0) progress(`${out.length.toLocaleString()} of ${n.toLocaleString()} identities`);
  }
  return out;
}

/**
 * Opens one link per entry of `pings` (a plain connection for `undefined`),
 * `parallel` at a time; resolves the sockets and the seconds taken. A link
 * with a ping counts once the server's pong arrived (the handshake is done).
 */
export async function connect(
  port: number,
  pings: Array<string | undefined>,
  parallel = 200,
  progress?: (line: string) => void,
): Promise<{ sockets: WebSocket[]; seconds: number }> {
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
      while (next < pings.length) {
        sockets.push(await one(pings[next++]));
        if (progress && sockets.length % 2000 === 0) progress(`${sockets.length.toLocaleString()} of ${pings.length.toLocaleString()} links`);
      }
    }),
  );
  return { sockets, seconds: (performance.now() - start) / 1000 };
}

export async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) => new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r(undefined) : (ws.once("close", r), ws.terminate())))));
}
