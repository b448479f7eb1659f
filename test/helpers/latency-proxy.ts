/**
 * A TCP proxy on loopback that holds every chunk for `oneWayMs` before
 * passing it on, in both directions: the servers of a benchmark then talk
 * across a round trip of 2 × oneWayMs, as across a WAN, with loopback's
 * bandwidth. Chunks of one direction leave in the order they came (timers
 * of one duration fire in the order they were set).
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { once } from "node:events";

export interface LatencyProxy {
  port: number;
  close(): Promise<void>;
}

export async function startLatencyProxy(targetPort: number, oneWayMs: number, host = "127.0.0.1"): Promise<LatencyProxy> {
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const delayed = (from: Socket, to: Socket) => {
    from.on("data", (chunk) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!to.destroyed) to.write(chunk);
      }, oneWayMs);
      timers.add(timer);
    });
    // The end follows the data still held.
    from.on("end", () => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        to.end();
      }, oneWayMs);
      timers.add(timer);
    });
  };
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
      s.on("close", () => sockets.delete(s));
    }
    delayed(client, upstream);
    delayed(upstream, client);
  });
  server.listen(0, host);
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return {
    port,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
