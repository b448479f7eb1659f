// The guide's client: no server address is known beforehand; it finds one on the DHT topic,
// writes a signed record, reads it back from the server, and leaves.
// Run: TOOLDB_DHT_BOOTSTRAP=host:port node examples/node/client.mjs "a message"
import { DHTClient } from "tooldb-dht/discovery";

const client = new DHTClient(process.env.TOPIC ?? "my-app-v1");
await client.start();
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no server found on the topic within 30 s")), 30_000);
  client.db.once("connect", () => resolve(clearTimeout(timer)));
});
const message = process.argv[2] ?? "hello from the client";
await client.db.putData("examples:last-message", message, false, { ack: 1 }); // resolves once a server confirmed it
console.log(`read back: ${await client.db.getData("examples:last-message", false, 5000)}`);
await client.stop();
