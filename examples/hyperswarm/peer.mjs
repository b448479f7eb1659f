// A peer on Hyperswarm (HyperDHT, hole-punching): no host, no port, only the topic.
// `peer.mjs server` keeps serving; `peer.mjs client "text"` finds a server through the swarm,
// writes the text, reads it back and leaves.
// Run a private HyperDHT first (tooldb-dht bootstrap --hyperdht) and pass it:
//   TOOLDB_HYPERDHT_BOOTSTRAP=127.0.0.1:49737 node examples/hyperswarm/peer.mjs server
import { ToolDb } from "tooldb-dht";
import { HyperswarmNetwork } from "tooldb-dht/hyperswarm";

const role = process.argv[2] === "client" ? "client" : "server";
const topic = process.env.TOPIC ?? "my-app-v1";
const db = new ToolDb({ topic, server: role === "server", networkAdapter: HyperswarmNetwork });
await db.ready;

if (role === "server") {
  db.on("connect", () => console.log("a peer linked over hyperswarm"));
  // Ready once the topic is announced on the DHT: a client that looks it up from now on finds this server.
  await db.network.joined;
  console.log(`hyperswarm server on sha256(${topic})`);
  const stop = async () => {
    await db.close();
    console.log("server stopped");
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
} else {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no server found on the swarm within 30 s")), 30_000);
    db.once("connect", () => resolve(clearTimeout(timer)));
  });
  await db.putData("examples:swarm", process.argv[3] ?? "hello over hyperswarm", false, { ack: 1 });
  console.log(`read back: ${await db.getData("examples:swarm", false, 5000)}`);
  await db.close();
}
