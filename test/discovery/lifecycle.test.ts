/** leave/destroy, events after destroy, bind errors, process exit, bootstrap node. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isToolDbError, type ToolDbError } from "../../src/base/errors.js";
import DC, { Discovery, startBootstrapNode, type DiscoveryOptions } from "../../src/entries/discovery.js";
import type { PeerAddress } from "../../src/discovery/peer-table.js";
import { createDhtTestnet, waitForEvent, type DhtTestnet } from "../helpers/dht-testnet.js";

let net: DhtTestnet;
const live: Discovery[] = [];

function make(host: string, opts: DiscoveryOptions = {}): Discovery {
  const d = new Discovery({ bootstrap: net.bootstrap, host, timeout: 500, fastInterval: 50, lookupTimeout: 3000, ...opts });
  live.push(d);
  return d;
}

/** Resolves with the bound port once `d` listens. */
async function boundPort(d: Discovery): Promise<number> {
  const addr = d.address() ?? (await waitForEvent<[{ port: number }]>(d, "listening", 5000))[0];
  return addr.port;
}

before(async () => {
  net = await createDhtTestnet(3);
});
afterEach(async () => {
  await Promise.all(live.splice(0).map((d) => d.destroy()));
});
after(async () => {
  await net.destroy();
});

describe("leave", () => {
  it("is idempotent and stops announcing and looking up", async () => {
    const d = make("127.0.0.2");
    d.leave("never joined"); // no-op
    d.join("t-leave", 7001);
    d.join("t-leave", 7002);
    d.join("t-leave");
    assert.deepEqual(
      d.list().map((e) => e.port).sort(),
      [0, 7001, 7002],
    );
    d.leave("t-leave", 7001);
    d.leave("t-leave", 7001);
    assert.deepEqual(d.list().map((e) => e.port).sort(), [0, 7002]);
    d.leave("t-leave");
    d.leave("t-leave");
    assert.deepEqual(d.list(), []);
    assert.equal(d.refresh("t-leave"), false);

    // leaving the last announced port of an announce-only join ends the topic
    d.join("t-leave-2", 7003);
    d.leave("t-leave-2", 7003);
    assert.deepEqual(d.list(), []);

    // no lookup for a left topic while another topic keeps looking up
    const leftLookups: unknown[] = [];
    d.on("lookup", (id) => {
      if (id === "t-leave" || id === "t-leave-2") leftLookups.push(id);
    });
    d.join("t-other");
    let n = 0;
    await waitForEvent(d, "lookup", 5000, (id) => id === "t-other" && ++n >= 3);
    assert.deepEqual(leftLookups, []);
  });
});

describe("destroy", () => {
  it("is idempotent, returns a promise, calls back, and works while still binding", async () => {
    const d = DC({ bootstrap: net.bootstrap, host: "127.0.0.2" });
    d.join("t-destroy", 7010);
    let calls = 0;
    const p1 = d.destroy(() => calls++);
    const p2 = d.destroy(() => calls++);
    assert.equal(p1, p2);
    await p1;
    await d.destroy();
    assert.equal(calls, 2);
    assert.equal(d.destroyed, true);
    assert.equal(d.address(), null);
    assert.deepEqual(d.list(), []);
    // joining after destroy does nothing and reports CLOSED
    const err = await new Promise<Error | null>((resolve) => d.join("t-destroy", 7010, resolve));
    assert.ok(isToolDbError(err, "CLOSED"));
    assert.deepEqual(d.list(), []);
  });

  it("no event fires after destroy, and every timer is cleared", async () => {
    const server = make("127.0.0.2");
    server.join("t-silence", 7020);
    const d = make("127.0.0.3", { want: 5 });
    const found = waitForEvent(d, "peer", 5000);
    d.join("t-silence");
    d.join("t-silence-2", 7021);
    await found;

    const after: string[] = [];
    const destroyed = d.destroy();
    // listeners added after destroy() (those added before are dropped by it)
    for (const ev of ["peer", "lookup", "announced", "warning", "failure", "listening", "ready"] as const) {
      d.on(ev, () => after.push(ev));
    }
    await destroyed;
    assert.equal((d as unknown as { timers: { size: number } }).timers.size, 0);
    // meanwhile the server keeps working: several of its lookups complete
    server.join("t-silence");
    let n = 0;
    await waitForEvent(server, "lookup", 5000, () => ++n >= 5);
    assert.deepEqual(after, []);
  });

  it("a process using Discovery exits on its own after destroy", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tooldb-dht-exit-"));
    try {
      const here = fileURLToPath(new URL(".", import.meta.url));
      const mod = (p: string) => JSON.stringify(pathToFileURL(join(here, p)).href);
      const script = join(dir, "child.mjs");
      await writeFile(
        script,
        `import { Discovery } from ${mod("../../src/entries/discovery.js")};
         import { createDhtTestnet } from ${mod("../helpers/dht-testnet.js")};
         const net = await createDhtTestnet(3);
         const opts = { bootstrap: net.bootstrap, timeout: 500, fastInterval: 50 };
         const server = new Discovery({ ...opts, host: "127.0.0.2" });
         const client = new Discovery({ ...opts, host: "127.0.0.3", statePath: ${JSON.stringify(join(dir, "state.json"))} });
         server.join("exit-topic", 7030);
         await new Promise((resolve) => { client.on("peer", resolve); client.join("exit-topic"); });
         await Promise.all([server.destroy(), client.destroy()]);
         await net.destroy();
         process.stdout.write("done");
        `,
      );
      const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let errOut = "";
      child.stdout.on("data", (b: Buffer) => (out += b.toString()));
      child.stderr.on("data", (b: Buffer) => (errOut += b.toString()));
      const code = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`child did not exit within 15 s (stdout: ${out}, stderr: ${errOut})`));
        }, 15_000);
        child.on("exit", (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      assert.equal(code, 0, errOut);
      assert.equal(out, "done");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("socket errors", () => {
  it("a bind error (port in use) is a 'failure' event, not a crash", async () => {
    const first = make("127.0.0.2");
    const port = await boundPort(first);
    const second = make("127.0.0.2", { port });
    const [failure] = await waitForEvent<[ToolDbError]>(second, "failure", 5000);
    assert.ok(isToolDbError(failure, "NETWORK_FAILED"));
    assert.equal((failure.details as { code?: string }).code, "EADDRINUSE");
    assert.equal(second.address(), null);
    // joins after a failure are listed but report the failure
    const err = await new Promise<Error | null>((resolve) => second.join("t-fail", 7040, resolve));
    assert.equal(err, failure);
    assert.deepEqual(second.list(), [{ id: "t-fail", port: 7040 }]);
    await second.destroy();
  });

  it("a bind address that is not local is a failure too (never a silent 0.0.0.0 bind)", async () => {
    // 192.0.2.1 is TEST-NET-1: never assigned locally, and binding sends nothing
    const d = make("192.0.2.1");
    const [failure] = await waitForEvent<[ToolDbError]>(d, "failure", 5000);
    assert.ok(isToolDbError(failure, "NETWORK_FAILED"));
    assert.equal((failure.details as { code?: string }).code, "EADDRNOTAVAIL");
    await assert.rejects(startBootstrapNode({ host: "192.0.2.1", port: 0 }), (err) => isToolDbError(err, "NETWORK_FAILED"));
  });

  it("without a 'failure' listener the bind error is only logged", async () => {
    const first = make("127.0.0.2");
    const port = await boundPort(first);
    const second = make("127.0.0.2", { port });
    second.join("t-fail-quiet");
    // the failed DHT closes its socket; the process is still here
    await waitForEvent(second.dht, "close", 5000);
    assert.equal(second.address(), null);
    await second.destroy();
    await second.destroy();
  });

  it("surfaces DHT warnings (e.g. an undecodable packet) as 'warning'", async () => {
    const d = make("127.0.0.2");
    const port = await boundPort(d);
    const warned = waitForEvent<[Error]>(d, "warning", 5000);
    const sock = createSocket("udp4");
    try {
      await new Promise<void>((resolve) => sock.bind(0, "127.0.0.4", resolve));
      await new Promise<void>((resolve, reject) =>
        sock.send(Buffer.from("not bencode"), port, "127.0.0.2", (err) => (err ? reject(err) : resolve())),
      );
      const [err] = await warned;
      assert.ok(err instanceof Error);
    } finally {
      sock.close();
    }
  });

  it("rejects invalid arguments with INVALID_ARGUMENT", () => {
    const isInvalid = (err: unknown) => isToolDbError(err, "INVALID_ARGUMENT");
    assert.throws(() => new Discovery({ bootstrap: ["nope"] }), isInvalid);
    assert.throws(() => new Discovery({ bootstrap: net.bootstrap, fastInterval: 10_000, slowInterval: 1000 }), isInvalid);
    const d = make("127.0.0.2");
    assert.throws(() => d.join("t", 0), isInvalid); // 0 would be implied_port
    assert.throws(() => d.join("t", 70_000), isInvalid);
    assert.throws(() => d.join("t", 7050, { want: 0 }), isInvalid);
    assert.throws(() => d.join(42 as unknown as string), isInvalid);
    assert.deepEqual(d.list(), []);
  });
});

describe("startBootstrapNode", () => {
  it("runs a private-network bootstrap node that two Discoveries meet through", async () => {
    const boot = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    try {
      const { host, port } = boot.address();
      assert.equal(host, "127.0.0.1");
      const opts = { bootstrap: [`${host}:${port}`], timeout: 500, fastInterval: 50 };
      const server = new Discovery({ ...opts, host: "127.0.0.2" });
      const client = new Discovery({ ...opts, host: "127.0.0.3" });
      live.push(server, client);
      const found = waitForEvent<[string, PeerAddress]>(client, "peer", 5000);
      server.join("t-boot", 7060);
      client.join("t-boot");
      assert.deepEqual((await found)[1], { host: "127.0.0.2", port: 7060 });

      // a second bootstrap node on the same port fails cleanly
      await assert.rejects(startBootstrapNode({ host, port }), (err) => isToolDbError(err, "NETWORK_FAILED"));
    } finally {
      await boot.close();
      await boot.close();
    }
  });
});
