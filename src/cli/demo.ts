import { DHTClient, DHTServer } from "../platform/dht-server.js";
import { startBootstrapNode } from "../discovery/bootstrap-node.js";

/**
 * The README's main job: a private DHT on loopback, three servers on
 * 127.0.0.2-4 that find each other only through it, two clients that find
 * servers only through it, and a put on one client read on the other.
 */
export async function runDemo(print: (line: string) => void): Promise<void> {
  const t0 = performance.now();
  const at = () => `${(performance.now() - t0).toFixed(0).padStart(5)} ms`;
  const topic = "tooldb-dht-demo";
  const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
  const bootstrap = [`127.0.0.1:${seed.address().port}`];
  print(`${at()}  private DHT bootstrap node on ${bootstrap[0]} (no public DHT is contacted)`);
  const fast = { fastInterval: 250, slowInterval: 5000 };
  const db = { wait: 100 };
  const servers = ["127.0.0.2", "127.0.0.3", "127.0.0.4"].map(
    (host) => new DHTServer(topic, host, 0, { bootstrap, discovery: fast, db }),
  );
  const clients = ["127.0.0.5", "127.0.0.6"].map((host) => new DHTClient(topic, { bootstrap, dhtHost: host, discovery: fast, db }));
  const everyone = [...servers, ...clients];
  try {
    for (const s of servers) {
      s.onPeerConnected = (p) => print(`${at()}  server ${s.host}:${s.port} linked with ${p.host ?? "?"}:${p.port ?? "?"} (${p.isServer ? "server" : "client"} ${p.peerId})`);
    }
    await Promise.all(servers.map((s) => s.start()));
    for (const s of servers) print(`${at()}  server announcing "${topic}" -> ${s.host}:${s.port}`);
    clients.forEach((c, i) => {
      c.onPeerConnected = (p) => print(`${at()}  client ${i + 1} found and verified server ${p.host}:${p.port}`);
    });
    await Promise.all(clients.map((c) => c.start()));
    await until(() => servers.every((s) => s.db.network.peers.filter((p) => p.isServer).length >= 2), 15_000, "server mesh");
    print(`${at()}  mesh formed: every server is linked to the other two`);
    await until(() => clients.every((c) => c.db.network.peers.length >= 1), 15_000, "client connections");
    const [writer, reader] = clients as [DHTClient, DHTClient];
    const received = new Promise<number>((resolve) => {
      reader.db.addKeyListener<{ text: string; sentAt: number }>("demo-message", (record) => {
        if (record.v.text) resolve(performance.now() - record.v.sentAt);
      });
    });
    await reader.db.subscribeData("demo-message");
    await until(() => servers.some((s) => (s.db.remoteSubscriptions.subscribers("demo-message")?.size ?? 0) > 0), 5000, "subscription");
    const sentAt = performance.now();
    await writer.db.putData("demo-message", { text: "hello through the DHT", sentAt });
    print(`${at()}  client 1 put "demo-message"`);
    const latency = await withTimeout(received, 5000, "delivery");
    print(`${at()}  client 2 received it, verified, ${latency.toFixed(1)} ms after the put`);
    const read = await reader.db.getData<{ text: string }>("demo-message");
    print(`${at()}  client 2 getData -> ${JSON.stringify(read?.text)}`);
  } finally {
    await Promise.all(everyone.map((n) => n.stop()));
    await seed.close();
    print(`${at()}  all nodes stopped`);
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`demo: timed out waiting for ${what}`)), ms))),
  ]);
}
