// Every example in examples/ runs as written, by package name, on a private
// loopback-only DHT (mainline and HyperDHT testnets); the browser chat in
// Chromium, served by `serve --web-dir`.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { DHTServer } from "../src/entries/discovery.js";
import { launchChromium } from "./helpers/chromium.js";
import { createDhtTestnet, type DhtTestnet } from "./helpers/dht-testnet.js";
import { bootstrapEnv, hyperTestnet, type Testnet } from "./helpers/hyperdht-testnet.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { ListCrdt } from "../src/crdt/index.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url)); // dist/test/ -> the repository
const EXAMPLES = join(ROOT, "examples");
const cli = join(ROOT, "dist", "src", "cli", "main.js");

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts a process; resolves once its output matches `ready` (bounded), rejects if it exits first. */
function start(args: string[], env: Record<string, string>, ready: RegExp, timeoutMs = 30_000): Promise<Started & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.join(" ")}: no ${ready} within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d;
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, output: () => out, exited, match });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited (${code}) before ${ready}:\n${out}`));
    });
  });
}

/** Runs a process to its end (bounded); resolves its exit code and output. */
async function runToEnd(args: string[], env: Record<string, string>, timeoutMs = 90_000): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d));
  child.stderr!.on("data", (d: Buffer) => (out += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(killer);
  return { code, out };
}

async function stop(started: Started | undefined, signal: NodeJS.Signals = "SIGINT"): Promise<number | null> {
  if (!started) return null;
  if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill(signal);
  const killer = setTimeout(() => started.child.kill("SIGKILL"), 10_000);
  const code = await started.exited;
  clearTimeout(killer);
  return code;
}

describe("examples/ run as written", { timeout: 300_000 }, () => {
  describe("node: the guide's server and client on a private mainline DHT", () => {
    let testnet: DhtTestnet;
    let server: Started | undefined;
    before(async () => {
      testnet = await createDhtTestnet(3);
    });
    after(async () => {
      await stop(server);
      await testnet?.destroy();
    });

    it("the client finds the server on the topic, its write is acknowledged and read back; the server stops on SIGINT", async () => {
      const env = { TOOLDB_DHT_BOOTSTRAP: testnet.bootstrap.join(","), TOPIC: "examples-node", HOST: "127.0.0.1", PORT: "0" };
      server = await start([join(EXAMPLES, "node", "server.mjs")], env, /server listening on 127\.0\.0\.1:\d+, topic examples-node/);
      const client = await runToEnd([join(EXAMPLES, "node", "client.mjs"), "hello from the example"], { TOOLDB_DHT_BOOTSTRAP: env.TOOLDB_DHT_BOOTSTRAP, TOPIC: env.TOPIC });
      assert.equal(client.code, 0, client.out);
      assert.match(client.out, /read back: hello from the example/);
      assert.match(server.output(), /linked: \S+ \(client\)/);
      assert.equal(await stop(server), 0);
      assert.match(server.output(), /server stopped/);
      server = undefined;
    });
  });

  describe("hyperswarm: a server and a client peer on a private HyperDHT", () => {
    let testnet: Testnet;
    let server: Started | undefined;
    before(async () => {
      testnet = await hyperTestnet(3);
    });
    after(async () => {
      await stop(server);
      await testnet?.destroy();
    });

    it("the client finds the server through the swarm by topic alone; its write is acknowledged and read back", async () => {
      // Debug logs (stderr) go with a failure; the server's log comes first: CI keeps only the start of a long message.
      const env = { TOOLDB_HYPERDHT_BOOTSTRAP: bootstrapEnv(testnet), TOPIC: "examples-swarm" };
      server = await start([join(EXAMPLES, "hyperswarm", "peer.mjs"), "server"], { ...env, DEBUG: "tooldb:*" }, /hyperswarm server on sha256\(examples-swarm\)/);
      const client = await runToEnd([join(EXAMPLES, "hyperswarm", "peer.mjs"), "client", "hello over the swarm"], { ...env, DEBUG: "tooldb:network*" });
      assert.equal(client.code, 0, `--- server ---\n${server.output()}\n--- client (end) ---\n${client.out.slice(-3000)}`);
      assert.match(client.out, /read back: hello over the swarm/);
      // The first link must carry the handshake. hyperdht 6.33–6.34 raced its LAN shortcut with holepunching and
      // left most same-host links half-open (hyperdht issue #304): 8 of 10 local runs needed a second or third link.
      assert.equal((client.out.match(/swarm connection/g) ?? []).length, 1, `more than one swarm link was needed:\n${client.out.slice(-3000)}`);
      assert.doesNotMatch(client.out, /handshake timeout/);
      assert.equal(await stop(server), 0);
      assert.match(server.output(), /server stopped/);
      server = undefined;
    });
  });

  describe("browser-chat: two tabs of the chat page served by serve --web-dir (Chromium)", () => {
    let testnet: DhtTestnet;
    let other: DHTServer;
    let serve: Started | undefined;
    let browser: Browser;
    let dir: string;
    let pageUrl: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "tooldb-chat-"));
      testnet = await createDhtTestnet(3);
      other = new DHTServer("examples-chat", "127.0.0.2", 0, { bootstrap: testnet.bootstrap, discovery: { fastInterval: 100, jitter: 0, timeout: 500 }, db: FAST });
      await other.start();
      const args = [cli, "serve", "--topic", "examples-chat", "--host", "127.0.0.1", "--port", "0", "--web-dir", join(EXAMPLES, "browser-chat"), "--data", join(dir, "data"), "--bootstrap", testnet.bootstrap.join(","), "--no-metrics"];
      const started = await start(args, {}, /Status page: (http:\/\/\S+)\//);
      serve = started;
      pageUrl = `${started.match[1]}/chat.html?topic=examples-chat`;
      browser = await launchChromium();
    });

    after(async () => {
      await browser?.close();
      await stop(serve);
      await other?.stop();
      await testnet?.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    const logs = new Map<Page, string[]>();
    const open = async (): Promise<Page> => {
      const page = await (await browser.newContext()).newPage();
      const log: string[] = [];
      logs.set(page, log);
      page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
      page.on("pageerror", (err) => log.push(`pageerror: ${err.message}`));
      page.on("framenavigated", (frame) => frame === page.mainFrame() && log.push(`navigated: ${frame.url()}`));
      await page.goto(pageUrl);
      return page;
    };
    /** Waits in `page`; a timeout reports each tab's address, state and console (a reload, an error). */
    const waitIn = async (page: Page, fn: () => boolean, what: string): Promise<void> => {
      try {
        await page.waitForFunction(fn, undefined, { timeout: 30_000, polling: 50 });
      } catch (err) {
        const state = (p: Page) => (p.isClosed() ? Promise.resolve({}) : p.evaluate(() => ({ ...document.body.dataset })).catch(() => ({})));
        const tabs = await Promise.all([...logs].map(async ([p, log], i) => `tab ${i}: ${p.url()} ${JSON.stringify(await state(p))}\n  ${log.slice(-60).join("\n  ")}`));
        throw new Error(`${what}: ${(err as Error).message}\n${tabs.join("\n")}\n--- serve (end) ---\n${serve?.output().slice(-4000)}`);
      }
    };

    it("each tab links to the server that served it, learns the other server by gossip and links to it; a message reaches the other tab", async () => {
      const [a, b] = [await open(), await open()];
      for (const page of [a, b]) {
        await page.waitForFunction(() => Number(document.body.dataset.knownServers) >= 2 && Number(document.body.dataset.linkedServers) >= 2, undefined, {
          timeout: 45_000,
          polling: 100,
        });
      }
      await a.fill("#name", "alice");
      await a.fill("#text", "hello from tab A");
      await a.click("button");
      await waitIn(b, () => document.getElementById("log")!.textContent!.includes("hello from tab A"), "tab B shows tab A's message");
      await b.fill("#name", "bob");
      await b.fill("#text", "hi alice");
      await b.click("button");
      await waitIn(a, () => Number(document.body.dataset.messages) === 2, "tab A shows both messages");
      assert.deepEqual(await a.$$eval("#log li", (lis) => lis.map((li) => li.textContent)), ["alicehello from tab A", "bobhi alice"]);
      // The other server holds the room too: the messages went through the mesh.
      const room = new ListCrdt<{ text: string }>("reader");
      await waitUntil(async () => (await other.db.getCrdt("chat-room", room), room.value.length === 2), 30_000, "the room on the other server");
      assert.deepEqual(room.value.map((m) => m.text), ["hello from tab A", "hi alice"]);
    });
  });
});
