/**
 * A full disk is the server's fault, not the writer's: `serve` on a small
 * tmpfs (in a mount namespace this test makes) refuses the put that does not
 * fit with STORAGE_FAILED and no strike, /healthz turns unhealthy, and reads
 * go on. Skipped, saying why, where mount namespaces are not allowed.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { ErrorCode, isToolDbError } from "../src/base/errors.js";
import { startBootstrapNode, type BootstrapNode } from "../src/entries/discovery.js";
import { ToolDb } from "../src/index.js";
import { httpGet } from "./helpers/http.js";
import { waitUntil } from "./helpers/nodes.js";

const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

/** Why a mount namespace with a tmpfs cannot be had here, or undefined when it can. */
function mountNamespaceUnavailable(dir: string): string | undefined {
  const probe = spawnSync("unshare", ["-m", "sh", "-c", `mount -t tmpfs -o size=1m tooldb-probe "${dir}"`], { encoding: "utf8" });
  if (probe.error) return `unshare not available: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare -m / mount tmpfs not allowed: ${probe.stderr.trim().split("\n")[0]}`;
  return undefined;
}

describe("a full disk under serve", { timeout: 120_000 }, () => {
  let dir: string;
  let seed: BootstrapNode;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tooldb-full-"));
    seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
  });
  after(async () => {
    await seed?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses the write with STORAGE_FAILED and no strike, turns /healthz unhealthy, keeps serving reads", async (t) => {
    const unavailable = mountNamespaceUnavailable(dir);
    if (unavailable) {
      t.skip(unavailable);
      return;
    }
    const args = ["serve", "--topic", "full-disk", "--host", "127.0.0.1", "--port", "0", "--data", join(dir, "data"), "--bootstrap", `127.0.0.1:${seed.address().port}`, "--metrics-port", "0"];
    // 4 MiB of tmpfs: the store, its keys and its sync index fit, a few 200 KB records more do not.
    const child = spawn("unshare", ["-m", "sh", "-c", `mount -t tmpfs -o size=4m tooldb-full "${dir}" && exec "$0" "$@"`, process.execPath, cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let writer: ToolDb | undefined;
    let reader: ToolDb | undefined;
    try {
      await waitUntil(() => /Metrics on http:\/\/127\.0\.0\.1:\d+/.test(out), 15_000, `serve started:\n${out}`);
      const port = Number(/Server running on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
      const metrics = Number(/Metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
      writer = new ToolDb({ topic: "full-disk", peers: [{ host: "127.0.0.1", port }] });
      await writer.ready;
      await new Promise((r) => writer!.once("connect", () => r(undefined)));
      await writer.putData("kept", "stored before the disk filled", false, { ack: 1, timeoutMs: 5000 });

      const big = "x".repeat(200_000);
      let refusal: unknown;
      for (let i = 0; i < 60 && refusal === undefined; i++) {
        await writer.putData(`big-${i}`, big, false, { ack: 1, timeoutMs: 5000 }).catch((err: unknown) => (refusal = err));
      }
      assert.ok(refusal !== undefined, "a write was refused once the tmpfs filled");
      assert.ok(isToolDbError(refusal, ErrorCode.STORAGE_FAILED), `refused with ${String(refusal)}`);
      assert.match((refusal as Error).message, /no space left on device|ENOSPC|IO error/i);

      // No strike: the writer's link stays.
      assert.equal(writer.network.peers.length, 1, "the writer is still linked");
      const health = await httpGet(`http://127.0.0.1:${metrics}/healthz`);
      assert.equal(health.status, 503);
      assert.equal((JSON.parse(health.body) as { status: string }).status, "storage-failed");

      reader = new ToolDb({ topic: "full-disk", peers: [{ host: "127.0.0.1", port }] });
      await reader.ready;
      await new Promise((r) => reader!.once("connect", () => r(undefined)));
      assert.equal(await reader.getData("kept", false, 3000), "stored before the disk filled");
    } finally {
      await writer?.close();
      await reader?.close();
      child.kill("SIGINT");
      const code = await exited;
      assert.equal(code, 0, `serve exited with ${code}:\n${out}`);
    }
  });
});
