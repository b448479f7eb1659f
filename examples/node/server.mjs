// The guide's server: announce on a DHT topic, find the other servers there, link to them.
// Run: TOOLDB_DHT_BOOTSTRAP=host:port node examples/node/server.mjs   (no bootstrap: the public mainline DHT)
// Env: TOPIC (default my-app-v1), HOST (127.0.0.1), PORT (9000; 0 = any), DATA_DIR (default: in memory).
import { DHTServer } from "tooldb-dht/discovery";

const server = new DHTServer(process.env.TOPIC ?? "my-app-v1", process.env.HOST ?? "127.0.0.1", Number(process.env.PORT ?? 9000), {
  dataDir: process.env.DATA_DIR || undefined,
  handleSignals: true, // SIGINT/SIGTERM: leave the DHT, close links and the store
  onSignalStop: () => console.log("server stopped"),
});
server.onPeerFound = (peer) => console.log(`found on the DHT: ${peer.host}:${peer.port}`);
server.onPeerConnected = (peer) => console.log(`linked: ${peer.peerId} (${peer.isServer ? "server" : "client"})`);
await server.start();
console.log(`server listening on ${server.db.options.host}:${server.port}, topic ${server.topic}`);
