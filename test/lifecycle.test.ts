import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ErrorCode, ToolDb, isToolDbError } from "../src/index.js";
import { DHTClient, DHTServer } from "../src/entries/discovery.js";

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

describe("DHTServer and DHTClient lifecycle", () => {
  const discovery = JSON.stringify(new URL("../src/entries/discovery.js", import.meta.url).href);
  const index = JSON.stringify(new URL("../src/index.js", import.meta.url).href);
  // A dead private bootstrap: nothing answers, nothing public is asked.
  const bootstrap = ["127.0.0.1:1"];

  it("a start() that fails (its port is taken) releases everything before it rejects: the process exits without stop()", { timeout: 30_000 }, async () => {
    const script = `
      import { ToolDb } from ${index};
      import { DHTServer } from ${discovery};
      const first = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "t" });
      await first.ready;
      const server = new DHTServer("t", "127.0.0.1", first.network.port, { bootstrap: ${JSON.stringify(bootstrap)} });
      await server.start().then(() => console.log("started"), (err) => console.log("rejected", err.code));
      await first.close();
      console.log("done"); // no server.stop(): before, its ToolDb kept the process alive
    `;
    const { code, out, err } = await runScript(script, 20_000);
    assert.equal(code, 0, `exit ${code}; stdout: ${out}; stderr: ${err}`);
    assert.match(out, /rejected NETWORK_FAILED\ndone/);
  });

  it("the constructor opens the server's port, as the ToolDb guide's DHTServer class does; stop() without start() releases it and the process exits", { timeout: 30_000 }, async () => {
    const script = `
      import { connect } from "node:net";
      import { DHTServer } from ${discovery};
      const server = new DHTServer("t", "127.0.0.1", 0, { bootstrap: ${JSON.stringify(bootstrap)} });
      await server.db.ready;
      const reachable = () => new Promise((resolve) => {
        const s = connect(server.port, "127.0.0.1");
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
      });
      console.log("before stop", await reachable());
      await server.stop();
      console.log("after stop", await reachable());
    `;
    const { code, out, err } = await runScript(script, 20_000);
    assert.equal(code, 0, `exit ${code}; stdout: ${out}; stderr: ${err}`);
    assert.match(out, /before stop true\nafter stop false/);
  });

  it("stop() during start() (and close() at construction) leaves nothing: a process that does it exits on its own", { timeout: 30_000 }, async () => {
    const script = `
      import { ToolDb } from ${index};
      import { DHTClient, DHTServer, startBootstrapNode } from ${discovery};
      const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
      const bootstrap = [\`127.0.0.1:\${seed.address().port}\`];
      const server = new DHTServer("t", "127.0.0.1", 0, { bootstrap, dhtHost: "127.0.0.1" });
      const client = new DHTClient("t", { bootstrap, dhtHost: "127.0.0.1" });
      const starts = [server.start(), client.start()].map((p) => p.catch((err) => err.code));
      await new Promise((r) => setImmediate(r));
      await Promise.all([server.stop(), client.stop(), server.stop(), client.stop()]);
      await new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "t" }).close();
      console.log("starts", (await Promise.all(starts)).join(","));
      await seed.close();
      console.log("done");
    `;
    const { code, out, err } = await runScript(script, 20_000);
    assert.equal(code, 0, `exit ${code}; stdout: ${out}; stderr: ${err}`);
    assert.match(out, /starts (CLOSED)?,(CLOSED)?\ndone/);
  });

  it("start() after stop() rejects with CLOSED, whether it had started or not; start() is idempotent before", { timeout: 30_000 }, async () => {
    const closed = (err: unknown) => isToolDbError(err, ErrorCode.CLOSED);
    const never = new DHTServer("lifecycle-stop", "127.0.0.1", 0, { bootstrap });
    await never.stop();
    await assert.rejects(never.start(), closed);

    const client = new DHTClient("lifecycle-stop", { bootstrap, dhtHost: "127.0.0.1" });
    const started = client.start();
    assert.equal(client.start(), started);
    await started;
    await Promise.all([client.stop(), client.stop()]);
    await assert.rejects(client.start(), closed);
    assert.equal(client.db.isClosed, true);
  });
});
