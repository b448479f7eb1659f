/**
 * The guide's "Using Hyperswarm" samples run as written (docs/dht-guide-hyperswarm.md),
 * `serve --hyperswarm`, and a process using every Hyperswarm path that must
 * exit by itself after close(). A private HyperDHT testnet on loopback; the
 * samples get its address through TOOLDB_HYPERDHT_BOOTSTRAP / HYPERDHT_BOOTSTRAP.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ToolDb } from "../src/index.js";
import { startBootstrapNode } from "../src/entries/discovery.js";
import { HYPERDHT_BOOTSTRAP_ENV } from "../src/network/hyperswarm-network.js";
import { type Testnet, bootstrapEnv, hyperTestnet, swarmOn } from "./helpers/hyperdht-testnet.js";
import { codeBlocks, runExample } from "./helpers/doc-examples.js";
import { FAST } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";

const T = 15_000;
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const blocks = codeBlocks("docs/dht-guide-hyperswarm.md");
const bridgeSample = blocks.find((b) => b.includes("server.network.attachStream(socket)"));
const networkSample = blocks.find((b) => b.includes("HyperswarmNetwork.with({ bootstrap })"));
/** The README's "Using Hyperswarm" sample, moved with its section to docs/api-discovery.md. */
const readmeSample = codeBlocks("docs/api-discovery.md").find((b) => b.includes("HyperswarmNetwork.with({ bootstrap })"));

let testnet: Testnet;
before(async () => {
  testnet = await hyperTestnet(3);
});
after(async () => {
  await testnet.destroy();
});

/** Spawns `node args` (cwd: a temp dir); `lines` sees stdout line by line. */
function spawnNode(args: string[], env: Record<string, string>, onLine: (line: string) => void) {
  const cwd = mkdtempSync(join(tmpdir(), "tooldb-hs-"));
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d;
    for (const line of d.toString().split("\n")) if (line) onLine(line);
  });
  child.stderr.on("data", (d: Buffer) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("exit", (code, signal) => {
      clearTimeout(killer);
      rmSync(cwd, { recursive: true, force: true });
      resolve({ code, signal, out, err });
    });
  });
  return { child, exited };
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** A Hyperswarm-only client of `topic` on the testnet. */
async function swarmClient(topic: string): Promise<ToolDb> {
  const db = new ToolDb({ topic, ...FAST, networkAdapter: swarmOn(testnet) });
  await db.ready;
  return db;
}

describe("docs/dht-guide-hyperswarm.md: Using Hyperswarm", () => {
  it("the guide's sample with its imports changed and the bridge call added serves ToolDb over Hyperswarm", { timeout: 60_000 }, async () => {
    assert.ok(bridgeSample, "bridge sample missing from the guide");
    // The sample listens on 9000 as in the guide (loopback, ToolDb's default host).
    assert.ok(await canListen("127.0.0.1", 9000), "port 9000 on 127.0.0.1 is taken: the guide's sample needs it");
    const { mkdirSync, writeFileSync } = await import("node:fs");
    const dir = join(repoRoot, ".tmp", "examples");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "hyperswarm-bridge.mjs");
    writeFileSync(file, bridgeSample);
    let connections = 0;
    const sample = spawnNode([file], { [HYPERDHT_BOOTSTRAP_ENV]: bootstrapEnv(testnet) }, (line) => {
      if (line.startsWith("New peer connection:")) connections++;
    });
    const clients: ToolDb[] = [];
    try {
      const writer = await swarmClient("my-app-topic");
      clients.push(writer);
      const [info] = await waitFor(writer, "peer-connect", T);
      assert.equal(info.isServer, true, "the bridged peer is the sample's ToolDb server");
      await writer.putData("guide-key", "stored through the bridge");
      // A second client reads it back from the sample's server.
      const reader = await swarmClient("my-app-topic");
      clients.push(reader);
      await waitFor(reader, "peer-connect", T);
      assert.equal(await reader.getData("guide-key", false, T), "stored through the bridge");
      assert.ok(connections >= 2, `the sample logged ${connections} connections`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      sample.child.kill("SIGTERM");
      await sample.exited;
    }
  });

  it("the HyperswarmNetwork sample runs: a dual server and a Hyperswarm-only client", { timeout: 60_000 }, async () => {
    assert.ok(networkSample, "HyperswarmNetwork sample missing from the guide");
    const out = await runExample("hyperswarm-network", networkSample, { TOOLDB_HYPERDHT_BOOTSTRAP: bootstrapEnv(testnet).split(",")[0]! }, 45_000);
    assert.match(out, /hello over hyperswarm/);
  });

  it("docs/api-discovery.md's Using Hyperswarm sample (the README's, before it moved) runs", { timeout: 60_000 }, async () => {
    assert.ok(readmeSample, "Hyperswarm sample missing from docs/api-discovery.md");
    const out = await runExample("readme-hyperswarm", readmeSample, { TOOLDB_HYPERDHT_BOOTSTRAP: bootstrapEnv(testnet).split(",")[0]! }, 45_000);
    assert.match(out, /hello over hyperswarm/);
  });
});

describe("serve --hyperswarm", () => {
  it("serves over WebSocket and Hyperswarm; a Hyperswarm-only client reaches it; SIGINT exits 0", { timeout: 60_000 }, async () => {
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    const dataDir = mkdtempSync(join(tmpdir(), "tooldb-hs-serve-"));
    let joined: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (joined = resolve));
    const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
    const args = ["serve", "--topic", "hs-cli", "--host", "127.0.0.1", "--port", "0", "--data", join(dataDir, "d")];
    args.push("--bootstrap", `127.0.0.1:${seed.address().port}`, "--hyperswarm", "--hyperdht-bootstrap", bootstrapEnv(testnet));
    const server = spawnNode([cli, ...args], {}, (line) => line.startsWith("Joined Hyperswarm topic") && joined());
    try {
      await ready;
      const client = await swarmClient("hs-cli");
      try {
        const [info] = await waitFor(client, "peer-connect", T);
        assert.equal(info.isServer, true);
      } finally {
        await client.close();
      }
      server.child.kill("SIGINT");
      const { code, out } = await server.exited;
      assert.match(out, /HyperDHT bootstrap: 127\.0\.0\.1:\d+/);
      assert.match(out, /peer connected: .* \(client/);
      assert.equal(code, 0);
    } finally {
      server.child.kill("SIGKILL");
      await server.exited;
      await seed.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("close() leaves no handle", () => {
  it("a process running DHTServer/DHTClient with Hyperswarm, a dual ToolDb and a Hyperswarm-only client exits by itself after close()", { timeout: 60_000 }, async () => {
    const script = `
import { ToolDb } from "tooldb-dht";
import { WebSocketNetwork } from "tooldb-dht/network";
import { HyperswarmNetwork } from "tooldb-dht/hyperswarm";
import { DHTServer, DHTClient, startBootstrapNode } from "tooldb-dht/discovery";
import createTestnet from "hyperdht/testnet.js";

const testnet = await createTestnet(3, { host: "127.0.0.1" });
const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
const bootstrap = ["127.0.0.1:" + seed.address().port];
const hyperswarm = { bootstrap: testnet.bootstrap, dhtHost: "127.0.0.1" };
const swarm = HyperswarmNetwork.with(hyperswarm);

const server = new DHTServer("no-handles", "127.0.0.1", 0, { bootstrap, hyperswarm });
await server.start();
const dual = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "no-handles", networkAdapter: [WebSocketNetwork, swarm] });
await dual.ready;
const client = new DHTClient("no-handles", { bootstrap, dhtHost: "127.0.0.1", hyperswarm });
await client.start();
const hsOnly = new ToolDb({ topic: "no-handles", networkAdapter: swarm });
await hsOnly.ready;
const until = (cond) => new Promise((resolve, reject) => {
  const t0 = Date.now();
  const tick = () => (cond() ? resolve() : Date.now() - t0 > 20000 ? reject(new Error("timeout")) : setTimeout(tick, 20));
  tick();
});
await until(() => hsOnly.network.peers.length >= 2 && client.db.network.peers.length >= 1);
await hsOnly.putData("k", "v");
await until(() => server.db.network.peers.length >= 2);
await Promise.all([client.stop(), hsOnly.close(), dual.close(), server.stop()]);
await seed.close();
await testnet.destroy();
console.log("closed");
`;
    const out = await runExample("hyperswarm-no-handles", script, {}, 45_000);
    assert.match(out, /closed/);
  });
});
