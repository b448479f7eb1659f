/**
 * A node restarted while the mainline DHT is unreachable still finds its
 * servers: from its peer cache (loopback), and from the LAN (mDNS between
 * two network namespaces this test creates; it fails, with the reason, where
 * they cannot be created). Every DHT bootstrap is local; the unreachable one
 * is a closed port on loopback.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DHTClient, DHTServer, type DhtNodeOptions } from "../src/entries/discovery.js";
import { createDhtTestnet } from "./helpers/dht-testnet.js";
import { createNetnsLan } from "./helpers/netns.js";
import { waitUntil } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";
import { codeBlocks, runExample } from "./helpers/doc-examples.js";
import { startBootstrapNode } from "../src/entries/discovery.js";

const T = 15_000;
/** Nothing listens there: the mainline DHT is "cut off". */
const DEAD_BOOTSTRAP = ["127.0.0.1:1"];
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const FAST: DhtNodeOptions = {
  discovery: { fastInterval: 100, slowInterval: 2000, jitter: 0, timeout: 300 },
  db: { wait: 50, maxReconnectDelay: 400, random: () => 0, handshakeTimeout: 1000 },
};

describe("restart with the mainline DHT unreachable", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("finds its server from the peer cache, first, and settles", { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "tooldb-restart-"));
    dirs.push(dir);
    const testnet = await createDhtTestnet(3);
    const server = new DHTServer("restart-cache", "127.0.0.2", 0, { ...FAST, bootstrap: testnet.bootstrap });
    try {
      await server.start();
      // First run: found on the mainline DHT; the verified server goes into the cache.
      const first = new DHTClient("restart-cache", { ...FAST, bootstrap: testnet.bootstrap, dhtHost: "127.0.0.3", dataDir: join(dir, "client") });
      await first.start();
      await waitUntil(() => first.db.network.peers.length > 0, T, "first run links");
      assert.equal(first.merged!.sources()[0]?.source, "mainline");
      await first.stop();

      // Second run: the DHT is cut off; the cache still has the server.
      const second = new DHTClient("restart-cache", { ...FAST, bootstrap: DEAD_BOOTSTRAP, dhtHost: "127.0.0.3", dataDir: join(dir, "client") });
      try {
        await second.start();
        const settled = waitFor(second.merged!, "settled", T);
        await waitFor(second.db, "peer-connect", T);
        assert.equal(second.db.network.peers[0]?.address, server.db.nodeAddress());
        assert.deepEqual(second.merged!.sources()[0], { host: "127.0.0.2", port: server.port, source: "peer-cache" });
        await settled;
        await second.db.putData("after-restart", "via the cache");
        await waitUntil(async () => (await server.db.getData("after-restart", false, 200)) === "via the cache", T, "put reaches the server");
      } finally {
        await second.stop();
      }
    } finally {
      await server.stop();
      await testnet.destroy();
    }
  });

  it("finds its server on the LAN (mDNS between two network namespaces), then from the cache with LAN off", { timeout: 90_000 }, async () => {
    const lan = createNetnsLan();
    const dir = mkdtempSync(join(tmpdir(), "tooldb-lan-"));
    dirs.push(dir);
    const scripts = join(repoRoot, ".tmp", "examples");
    mkdirSync(scripts, { recursive: true });
    const serverFile = join(scripts, "lan-server.mjs");
    const clientFile = join(scripts, "lan-client.mjs");
    writeFileSync(
      serverFile,
      `import { DHTServer } from "tooldb-dht/discovery";
const server = new DHTServer("lan-topic", process.env.HOST, 0, { bootstrap: ${JSON.stringify(DEAD_BOOTSTRAP)}, mechanisms: { lan: true }, handleSignals: true });
await server.start();
server.db.on("data", (r) => r.k === "lan-key" && console.log("got " + r.v));
console.log("serving " + server.port);
`,
    );
    writeFileSync(
      clientFile,
      `import { DHTClient } from "tooldb-dht/discovery";
const lan = process.env.LAN === "on" ? { interface: process.env.HOST, queryInterval: 200, roundWindow: 500 } : false;
const client = new DHTClient("lan-topic", { bootstrap: ${JSON.stringify(DEAD_BOOTSTRAP)}, dhtHost: "127.0.0.1", dataDir: process.env.DATA, mechanisms: { lan } });
await client.start();
const settled = new Promise((resolve) => client.merged.once("settled", resolve));
await new Promise((resolve) => client.db.once("peer-connect", resolve));
await settled;
const [first] = client.merged.sources();
console.log("linked via " + first.source + " to " + first.host + ":" + first.port);
await client.db.putData("lan-key", process.env.LAN);
await new Promise((resolve) => setTimeout(resolve, 200));
await client.stop();
`,
    );
    let serving: (port: string) => void = () => undefined;
    const port = new Promise<string>((resolve) => (serving = resolve));
    const got: string[] = [];
    const server = lan.run(lan.a.ns, serverFile, { HOST: lan.a.ip }, (line) => {
      if (line.startsWith("serving ")) serving(line.slice(8));
      if (line.startsWith("got ")) got.push(line.slice(4));
    });
    try {
      const p = await port;
      const viaLan = await lan.run(lan.b.ns, clientFile, { HOST: lan.b.ip, DATA: join(dir, "c"), LAN: "on" }).exited;
      assert.equal(viaLan.code, 0, `client (LAN) failed: ${viaLan.err}`);
      assert.match(viaLan.out, new RegExp(`linked via lan to ${lan.a.ip.replace(/\./g, "\\.")}:${p}`));
      const viaCache = await lan.run(lan.b.ns, clientFile, { HOST: lan.b.ip, DATA: join(dir, "c"), LAN: "off" }).exited;
      assert.equal(viaCache.code, 0, `client (cache) failed: ${viaCache.err}`);
      assert.match(viaCache.out, new RegExp(`linked via peer-cache to ${lan.a.ip.replace(/\./g, "\\.")}:${p}`));
      await waitUntil(() => got.includes("on") && got.includes("off"), T, "both puts reach the server");
      server.kill("SIGTERM");
      const end = await server.exited;
      assert.equal(end.code, 0, `server exit: ${end.err}`);
    } finally {
      server.kill("SIGKILL");
      await server.exited;
      lan.destroy();
    }
  });
});

describe("the Discovery mechanisms sample (docs/api-discovery.md, once the README's, and docs/dht-guide-mechanisms.md)", () => {
  for (const doc of ["docs/api-discovery.md", "docs/dht-guide-mechanisms.md"]) {
    it(`${doc}: runs as written on a private DHT; every enabled mechanism settles and the server is found`, { timeout: 60_000 }, async () => {
      const sample = codeBlocks(doc).find((b) => b.includes("client.merged.whenSettled()"));
      assert.ok(sample, `Discovery mechanisms sample missing from ${doc}`);
      const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
      try {
        const out = await runExample(`mechanisms-${doc.replace(/\W/g, "-")}`, sample, { DHT_BOOTSTRAP: `127.0.0.1:${seed.address().port}` });
        // The fixed list reports the server at once; the DHT may report it too (the same address is merged).
        assert.match(out, /^found by bootstrap-list( and mainline)?$/m);
      } finally {
        await seed.close();
      }
    });
  }
});
