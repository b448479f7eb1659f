/**
 * `tooldb-dht serve --legacy-records` as a child process, found through a
 * private DHT named only by TOOLDB_DHT_BOOTSTRAP, serving real tool-db 2.6.6
 * clients: one puts, another gets, and a tooldb-dht client reads it too.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ToolDb } from "../src/index.js";
import { startBootstrapNode } from "../src/entries/discovery.js";
import { waitFor, withTimeout } from "./helpers/wait.js";
import { startLegacyNode, type LegacyNode } from "./interop/legacy-node.js";

const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const TOPIC = `legacy-serve-${process.pid}`;

describe("serve --legacy-records with tool-db 2.6.6 clients", () => {
  it("a 2.6.6 client puts, another 2.6.6 client and a tooldb-dht client get it; the CLI says where its bootstrap came from", async () => {
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    const dir = mkdtempSync(join(tmpdir(), "tooldb-legacy-serve-"));
    const env = { ...process.env, TOOLDB_DHT_BOOTSTRAP: `127.0.0.1:${seed.address().port}` };
    const child = spawn(process.execPath, [cli, "serve", "--topic", TOPIC, "--host", "127.0.0.1", "--port", "0", "--data", join(dir, "data"), "--legacy-records"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const legacy: LegacyNode[] = [];
    let ours: ToolDb | undefined;
    try {
      const port = await withTimeout(
        new Promise<number>((resolve) => {
          child.stdout.on("data", (d: Buffer) => {
            out += d;
            const m = /Server running on 127\.0\.0\.1:(\d+)/.exec(out);
            if (m && /Announcing on DHT topic/.test(out)) resolve(Number(m[1]));
          });
        }),
        10_000,
        `serve to start (stdout: ${out}, stderr: ${err})`,
      );
      assert.match(out, new RegExp(`DHT bootstrap from TOOLDB_DHT_BOOTSTRAP: 127\\.0\\.0\\.1:${seed.address().port}`));
      assert.match(out, /--legacy-records: accepting tool-db 2\.6\.6 records/);

      const peers = [{ host: "127.0.0.1", port }];
      const writer = await startLegacyNode(TOPIC, { peers });
      legacy.push(writer);
      const reader = await startLegacyNode(TOPIC, { peers });
      legacy.push(reader);

      // 2.6.6 keeps no local copy of its own put: the reader's get is answered by the server.
      const value = { from: "tool-db 2.6.6", list: [1, 2, 3] };
      await writer.db.putData("legacy-key", value);
      let got: unknown = null;
      for (let i = 0; i < 20 && got === null; i++) got = await reader.db.getData("legacy-key", false, 250);
      assert.deepEqual(got, value, "the server verified and stored the 2.6.6 record and serves it back");

      ours = new ToolDb({ topic: TOPIC, peers, legacyRecords: true, wait: 20, maxReconnectDelay: 200 });
      const linked = waitFor(ours, "peer-connect", 5000);
      await ours.ready;
      await linked;
      assert.deepEqual(await ours.getData("legacy-key"), value);
      await ours.putData("dht-key", { from: "tooldb-dht" });
      let back: unknown = null;
      for (let i = 0; i < 20 && back === null; i++) back = await reader.db.getData("dht-key", false, 250);
      assert.deepEqual(back, { from: "tooldb-dht" }, "a 2.6.6 client gets a legacy-format record written by tooldb-dht");
    } finally {
      await ours?.close();
      for (const node of legacy) await node.close();
      child.kill("SIGTERM");
      assert.equal(await exited, 0, `serve exit code; stderr: ${err}`);
      await seed.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
