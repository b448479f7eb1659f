/**
 * What an attacker announces on a topic to hide its real servers: closed
 * ports, TCP tarpits (accept, never answer), WebSocket servers that accept
 * and never answer the handshake, and real ToolDb servers of another topic,
 * spread over the attacker's addresses. Counts the dials each kind receives and the
 * most held open at once. Used by the hostile discovery tests and bench.
 */
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { WebSocketServer } from "ws";
import type DHT from "bittorrent-dht";
import { ToolDb } from "../../src/index.js";
import { freePort } from "../../faults/ports.js";

export interface BogusCounts {
  closed: number;
  tarpits: number;
  silent: number;
  otherTopic: number;
}

export interface BogusFleet {
  /** The ports on each attacker address (each address announces its own: a DHT stores the announcer's IP). */
  byHost: Map<string, number[]>;
  ports: { closed: number[]; tarpits: number[]; silent: number[]; otherTopic: number[] };
  all(): number[];
  /** Links accepted by tarpits and silent servers, in total and at most at once; links per port (from one source address, if given). */
  dials(from?: string): { total: number; maxOpen: number; perPort: Map<number, number> };
  close(): Promise<void>;
}

function listening(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : 0);
    });
  });
}

export async function startBogusFleet(hosts: string | string[], counts: BogusCounts): Promise<BogusFleet> {
  const hostList = typeof hosts === "string" ? [hosts] : hosts;
  const byHost = new Map<string, number[]>(hostList.map((h) => [h, []]));
  let next = 0;
  /** The next attacker address, round robin; `port` is recorded under it. */
  const nextHost = () => hostList[next++ % hostList.length]!;
  const record = (host: string, port: number) => byHost.get(host)!.push(port);
  /** Links open now and at most at once, overall ("") and per source address. */
  const open = new Map<string, number>();
  const maxOpen = new Map<string, number>();
  const accepts: Array<{ port: number; from: string }> = [];
  const sockets = new Set<Socket>();
  const count = (key: string, delta: number) => {
    const n = (open.get(key) ?? 0) + delta;
    open.set(key, n);
    maxOpen.set(key, Math.max(maxOpen.get(key) ?? 0, n));
  };
  const accepted = (port: number, socket: Socket) => {
    const from = socket.remoteAddress?.replace(/^::ffff:/, "") ?? "?";
    accepts.push({ port, from });
    count("", 1);
    count(from, 1);
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.once("close", () => {
      count("", -1);
      count(from, -1);
      sockets.delete(socket);
    });
  };
  const tcpServers: Server[] = [];
  const wsServers: WebSocketServer[] = [];
  const dbs: ToolDb[] = [];
  const ports = { closed: [] as number[], tarpits: [] as number[], silent: [] as number[], otherTopic: [] as number[] };
  const close = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([
      ...tcpServers.map((s) => new Promise((r) => s.close(r))),
      ...wsServers.map((s) => new Promise((r) => s.close(r))),
      ...dbs.map((d) => d.close()),
    ]);
  };
  try {
    for (let i = 0; i < counts.tarpits; i++) {
      // Accepts, reads, never writes: the dialer waits for its own timeout.
      const server = createServer((socket) => {
        accepted(port, socket);
        socket.resume();
      });
      tcpServers.push(server);
      const host = nextHost();
      const port = await listening(server, host);
      ports.tarpits.push(port);
      record(host, port);
    }
    for (let i = 0; i < counts.silent; i++) {
      const http = createHttpServer();
      tcpServers.push(http);
      const wss = new WebSocketServer({ noServer: true });
      wsServers.push(wss);
      const host = nextHost();
      const port = await listening(http, host);
      record(host, port);
      // Completes the WebSocket upgrade, then never answers the ToolDb handshake.
      http.on("upgrade", (req, socket, head) => {
        accepted(port, socket as Socket);
        wss.handleUpgrade(req, socket, head, () => undefined);
      });
      ports.silent.push(port);
    }
    for (let i = 0; i < counts.otherTopic; i++) {
      const host = nextHost();
      const db = new ToolDb({ server: true, host, port: 0, topic: `another-topic-${i}` });
      dbs.push(db);
      await db.ready;
      ports.otherTopic.push((db.network as unknown as { port: number }).port);
      record(host, ports.otherTopic[ports.otherTopic.length - 1]!);
    }
    const taken = new Set([...ports.tarpits, ...ports.silent, ...ports.otherTopic]);
    while (ports.closed.length < counts.closed) {
      const host = nextHost();
      let port = await freePort([host]);
      while (taken.has(port)) port = await freePort([host]);
      taken.add(port);
      ports.closed.push(port);
      record(host, port);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    byHost,
    ports,
    all: () => [...ports.closed, ...ports.tarpits, ...ports.silent, ...ports.otherTopic],
    dials: (from) => {
      const perPort = new Map<number, number>();
      const mine = accepts.filter((a) => from === undefined || a.from === from);
      for (const a of mine) perPort.set(a.port, (perPort.get(a.port) ?? 0) + 1);
      return { total: mine.length, maxOpen: maxOpen.get(from ?? "") ?? 0, perPort };
    },
    close,
  };
}

/** Announces every port from `dht` (bound on the fleet's address): one lookup, then announces on the stored tokens. */
export async function announcePorts(dht: DHT, infoHash: Buffer, ports: number[], batch = 200): Promise<void> {
  const announce = (port: number) => new Promise<void>((resolve, reject) => dht.announce(infoHash, port, (err) => (err ? reject(err) : resolve())));
  if (ports.length === 0) return;
  await announce(ports[0]!);
  for (let i = 1; i < ports.length; i += batch) await Promise.all(ports.slice(i, i + batch).map(announce));
}
