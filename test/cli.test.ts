import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ToolDb } from "../src/index.js";
import { cliScratch, run } from "./helpers/cli.js";

describe("tooldb-dht CLI", () => {
  const scratch = cliScratch("tooldb-cli-");

  it("serve shuts down on SIGINT: leaves the DHT, closes everything, exits by itself with code 0", async () => {
    const bootstrap = scratch.bootstrap;
    const { exited } = run(["serve", "--topic", "cli-test", "--host", "127.0.0.2", "--port", "0", "--data", join(scratch.dir, "data"), "--bootstrap", bootstrap], (line, child) => {
      if (line.startsWith("Announcing on DHT topic")) child.kill("SIGINT");
    });
    const { code, out, err } = await exited;
    assert.match(out, /Server running on 127\.0\.0\.2:\d+/);
    assert.match(out, /SIGINT: left the DHT, closed sockets and store/);
    assert.equal(code, 0, `exit code ${code}; stderr: ${err}`);
  });

  it("serve on a port that is taken says so in one line and exits 1, without a stack trace", { timeout: 30_000 }, async () => {
    const holder = new ToolDb({ server: true, host: "127.0.0.2", port: 0, topic: "cli-test-port" });
    await holder.ready;
    try {
      const bootstrap = scratch.bootstrap;
      const { exited } = run(["serve", "--topic", "cli-test-port", "--host", "127.0.0.2", "--port", String(holder.network.port), "--data", join(scratch.dir, "taken"), "--bootstrap", bootstrap]);
      const { code, err } = await exited;
      assert.equal(code, 1, `exit code ${code}; stderr: ${err}`);
      assert.match(err, /^tooldb-dht: cannot listen on 127\.0\.0\.2:\d+: .*EADDRINUSE/m);
      assert.doesNotMatch(err, /\n\s+at /, "no stack trace");
    } finally {
      await holder.close();
    }
  });

  it("peers lists what the DHT says and verifies each address", async () => {
    const bootstrap = scratch.bootstrap;
    let serverReady: () => void;
    const ready = new Promise<void>((r) => (serverReady = r));
    const server = run(["serve", "--topic", "cli-peers", "--host", "127.0.0.3", "--port", "0", "--data", join(scratch.dir, "peers"), "--bootstrap", bootstrap], (line) => {
      if (line.startsWith("Announcing on DHT topic")) serverReady();
    });
    await ready;
    const { code, out } = await run(["peers", "--topic", "cli-peers", "--bootstrap", bootstrap, "--wait", "3"]).exited;
    server.child.kill("SIGTERM");
    await server.exited;
    assert.equal(code, 0);
    assert.match(out, /DHT says: 127\.0\.0\.3:\d+/);
    assert.match(out, /127\.0\.0\.3:\d+: verified ToolDb server/);
  });

  it("demo runs on loopback and exits 0", async () => {
    const { code, out } = await run(["demo"]).exited;
    assert.equal(code, 0);
    assert.match(out, /mesh formed/);
    assert.match(out, /client 2 received it, verified/);
  });
});
