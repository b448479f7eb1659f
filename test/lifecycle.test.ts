import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ToolDb } from "../src/index.js";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Runs `script` as an ES module in a child process; killed after `killAfterMs` if it has not exited by itself. */
async function runScript(script: string, killAfterMs: number): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: here, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("exit", (c) => {
      clearTimeout(killer);
      resolve(c);
    });
  });
  return { code, out, err };
}

describe("lifecycle", () => {
  it("close() leaves no open handle: a process that closes its nodes exits on its own", async () => {
    const script = `
      import { ToolDb } from ${JSON.stringify(new URL("../src/index.js", import.meta.url).href)};
      const server = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "t", heartbeatInterval: 50 });
      await server.ready;
      const client = new ToolDb({ topic: "t", peers: [{ host: "127.0.0.1", port: server.network.port }], heartbeatInterval: 50 });
      await new Promise((r) => client.once("connect", r));
      await client.putData("k", 1);
      await client.getData("missing", false, 5000).catch(() => null);
      await Promise.all([client.close(), server.close()]);
      console.log("closed");
    `;
    const { code, out, err } = await runScript(script, 15_000);
    assert.equal(out.trim(), "closed", err);
    assert.equal(code, 0, `the process must exit by itself after close(); stderr: ${err}`);
  });

  it("a server whose port is taken: ready rejects with NETWORK_FAILED, nothing crashes, close works and the process exits", { timeout: 30_000 }, async () => {
    const script = `
      import { ToolDb } from ${JSON.stringify(new URL("../src/index.js", import.meta.url).href)};
      import { mkdtempSync, rmSync } from "node:fs";
      import { tmpdir } from "node:os";
      const dir = mkdtempSync(tmpdir() + "/tooldb-port-taken-");
      const first = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "t" });
      await first.ready;
      const second = new ToolDb({ server: true, host: "127.0.0.1", port: first.network.port, topic: "t", storageName: dir + "/store" });
      await second.ready.then(() => console.log("ready resolved"), (err) => console.log("rejected", err.code, err.message));
      await Promise.all([second.close(), first.close()]);
      rmSync(dir, { recursive: true, force: true });
      console.log("closed");
    `;
    const { code, out, err } = await runScript(script, 20_000);
    assert.equal(code, 0, `exit ${code}; stderr: ${err}`);
    assert.match(out, /rejected NETWORK_FAILED cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    assert.match(out, /closed/);
  });

  it("close() is idempotent and no event fires after it", async () => {
    const server = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "t" });
    await server.ready;
    let events = 0;
    server.on("peer-connect", () => events++);
    server.on("refused", () => events++);
    await Promise.all([server.close(), server.close()]);
    await server.close();
    server.refused({ code: "BAD_MESSAGE", reason: "after close" });
    assert.equal(events, 0);
    assert.equal(server.isClosed, true);
  });
});
