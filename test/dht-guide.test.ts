/**
 * Every ```ts sample of docs/dht-guide.md's parts (docs/dht-guide-*.md) runs as written (as an .mjs inside
 * the package) against a private DHT on loopback: a fresh bootstrap node per
 * test, so records announced by one test never reach the next. Servers bind
 * 127.0.0.2/127.0.0.3, clients' DHT sockets 127.0.0.4; nothing contacts the
 * public DHT. Every wait is bounded, every child process ends.
 */
import { freePort as freePortOn } from "../faults/ports.js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startBootstrapNode } from "../src/entries/discovery.js";
import { DHT_GUIDE_PARTS, codeBlocks, runExample } from "./helpers/doc-examples.js";

const GUIDE = "docs/dht-guide.md";
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const TEST_TIMEOUT = 60_000;

/** The guide's samples by name, in document order. */
const SAMPLES = [
  "server",
  "skip-self",
  "client",
  "consistent-topics",
  "multiple-peers",
  "reconnection",
  "hyperswarm-bridge", // run by test/hyperswarm-guide.test.ts (needs a HyperDHT testnet)
  "hyperswarm-network", // idem
  "discovery-mechanisms", // run by test/discovery-restart.test.ts
  "browser",
  "complete-guide-class",
  "complete-packaged",
  "dht-client",
] as const;
type Sample = (typeof SAMPLES)[number];

/** The samples of the guide's parts, in the guide's order (the index, docs/dht-guide.md, has none). */
const blocks = DHT_GUIDE_PARTS.flatMap((part) => codeBlocks(part));
function sample(name: Sample): string {
  const code = blocks[SAMPLES.indexOf(name)];
  assert.ok(code, `sample ${name} missing from the parts of ${GUIDE}`);
  return code;
}

/** A private DHT for one test; `env` carries its address to the samples. */
async function withDht<T>(fn: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
  try {
    return await fn({ DHT_BOOTSTRAP: `127.0.0.1:${seed.address().port}` });
  } finally {
    await seed.close();
  }
}

/** A TCP port free on every given host (the samples put servers on several loopback addresses, same port). */
const freePort = (hosts = ["127.0.0.2", "127.0.0.3"]) => freePortOn(hosts);

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

interface Running {
  /** Resolves with stdout so far once it matches `re`; rejects on exit or after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  kill(signal: NodeJS.Signals): void;
  /** Resolves at exit (a SIGKILL after `timeoutMs` if it never exits). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string; cwd: string }>;
  cwd: string;
}

/**
 * Like runExample, but keeps the process under control so it can be signalled:
 * the file lives inside the package (imports of "tooldb-dht/..." resolve to
 * this checkout), the working directory is a fresh temp dir, removed by `cleanup()`.
 */
function startExample(name: string, code: string, env: Record<string, string>, timeoutMs = 30_000): Running & { cleanup(): void } {
  const dir = join(repoRoot, ".tmp", "examples");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, code);
  const cwd = mkdtempSync(join(tmpdir(), "tooldb-guide-"));
  const child = spawn(process.execPath, [file], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let done = false;
  const outputListeners = new Set<() => void>();
  child.stdout.on("data", (d) => {
    out += d;
    for (const l of outputListeners) l();
  });
  child.stderr.on("data", (d) => (err += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string; cwd: string }>((resolve) => {
    child.on("exit", (code, signal) => {
      clearTimeout(killer);
      done = true;
      for (const l of outputListeners) l();
      resolve({ code, signal, out, err, cwd });
    });
  });
  return {
    cwd,
    exited,
    kill: (signal) => child.kill(signal),
    cleanup: () => rmSync(cwd, { recursive: true, force: true }),
    waitFor: (re, ms = 15_000) =>
      new Promise<string>((resolve, reject) => {
        const check = () => {
          if (re.test(out)) finish();
          else if (done) finish(new Error(`${name} exited before printing ${re}:\n${err}\n${out}`));
        };
        const timer = setTimeout(() => finish(new Error(`${name}: no ${re} within ${ms} ms:\n${err}\n${out}`)), ms);
        function finish(e?: Error) {
          clearTimeout(timer);
          outputListeners.delete(check);
          if (e) reject(e);
          else resolve(out);
        }
        outputListeners.add(check);
        check();
      }),
  };
}

describe("docs/dht-guide.md (its parts): every sample runs as written on a private DHT", () => {
  it("the index links every part, in order, and holds no sample of its own", () => {
    const index = readFileSync(join(repoRoot, GUIDE), "utf8");
    const linked = [...index.matchAll(/\]\((dht-guide-[a-z]+\.md)\)/g)].map((m) => `docs/${m[1]}`);
    assert.deepEqual(linked, DHT_GUIDE_PARTS);
    assert.equal(codeBlocks(GUIDE).length, 0);
  });

  it("has the samples, importing only tooldb-dht, and never leaving out `bootstrap`", () => {
    assert.equal(blocks.length, SAMPLES.length, `expected ${SAMPLES.length} ts samples in the parts of ${GUIDE}`);
    for (const [i, code] of blocks.entries()) {
      const name = SAMPLES[i]!;
      for (const m of code.matchAll(/from "([^"]+)"/g)) {
        assert.match(m[1]!, /^(tooldb-dht(\/(discovery|network|stores|users|hyperswarm))?|crypto)$/, `${name} imports ${m[1]}`);
      }
      // Every DC(...), new DHTServer(...), new DHTClient(...) passes bootstrap: none may reach the public DHT.
      // (A sample that defines its own DHTServer class, as the guide's complete example, is checked at its DC() call.)
      const calls = /\bclass DHTServer\b/.test(code) ? /\b(DC|new DHTClient)\(/g : /\b(DC|new DHTServer|new DHTClient)\(/g;
      for (const m of code.matchAll(calls)) {
        let depth = 0;
        let end = m.index! + m[0].length - 1;
        for (; end < code.length; end++) {
          if (code[end] === "(") depth++;
          else if (code[end] === ")" && --depth === 0) break;
        }
        const call = code.slice(m.index!, end + 1);
        assert.match(call, /\bbootstrap\b/, `${name}: ${call.split("\n")[0]} has no bootstrap`);
      }
      if (/\b(DC|DHTServer|DHTClient)\(/.test(code)) assert.match(code, /process\.env\.DHT_BOOTSTRAP/, `${name} ignores DHT_BOOTSTRAP`);
      assert.doesNotMatch(code, /"(localhost|0\.0\.0\.0)"/, `${name} binds beyond 127.0.0.x`);
    }
  });

  it("Server setup + Client setup: two servers find themselves and each other once, link, and a client connects", { timeout: TEST_TIMEOUT }, () =>
    withDht(async (dht) => {
      const port = String(await freePort());
      const [a, b, client] = await Promise.all([
        runExample("guide-server-a", sample("server"), { ...dht, HOST: "127.0.0.2", PORT: port, RUN_MS: "5000" }),
        runExample("guide-server-b", sample("server"), { ...dht, HOST: "127.0.0.3", PORT: port, RUN_MS: "5000" }),
        runExample("guide-client", sample("client"), { ...dht, DHT_HOST: "127.0.0.4" }),
      ]);
      for (const [out, self] of [
        [a, "127.0.0.2"],
        [b, "127.0.0.3"],
      ] as const) {
        assert.match(out, new RegExp(`Server running on ${self}:${port}`));
        const other = self === "127.0.0.2" ? "127.0.0.3" : "127.0.0.2";
        // De-duplicated: the other server once, however many lookups ran in 5 s. Our own
        // announce is reported at most once (not at all when the other was found first:
        // with one peer known, lookups slow down).
        assert.equal(count(out, `DHT Peer found! ${other}:${port}\n`), 1, out);
        assert.ok(count(out, `DHT Peer found! ${self}:${port}\n`) <= 1, out);
        assert.match(out, /Connected to peer: \S+/);
      }
      assert.match(client, /Server peer found: \{ host: '127\.0\.0\.[23]', port: \d+ \}/);
      assert.match(client, /Connected to [12] server\(s\)/);
    }),
  );

  it("Server setup without the host check: our own announce is refused by identity, once", { timeout: TEST_TIMEOUT }, () =>
    withDht(async (dht) => {
      const port = await freePort();
      const out = await runExample("guide-skip-self", sample("skip-self"), { ...dht, HOST: "127.0.0.2", PORT: String(port) });
      assert.match(out, new RegExp(`^127\\.0\\.0\\.2:${port}: connected to self \\(not dialed again\\)$`, "m"));
    }),
  );

  it("Consistent topics: the same constant finds the server, a one-letter difference finds nothing", { timeout: TEST_TIMEOUT }, () =>
    withDht(async (dht) => {
      const port = await freePort();
      const out = await runExample("guide-topics", sample("consistent-topics"), { ...dht, PORT: String(port) });
      assert.match(out, new RegExp(`"my-awesome-app-v1" found 127\\.0\\.0\\.2:${port}`));
      assert.match(out, /"my-awesome-app-V1" found 0 peers/);
    }),
  );

  it("Handle multiple peers: a client links to both servers found on the DHT", { timeout: TEST_TIMEOUT }, () =>
    withDht(async (dht) => {
      const port = await freePort();
      const out = await runExample("guide-multiple", sample("multiple-peers"), { ...dht, PORT: String(port) });
      assert.match(out, new RegExp(`Connected to 2 servers: 127\\.0\\.0\\.2:${port}, 127\\.0\\.0\\.3:${port}`));
    }),
  );

  it("Reconnection: after losing its server the client finds a new one on the DHT, and re-dials the old one when it returns", { timeout: TEST_TIMEOUT }, () =>
    withDht(async (dht) => {
      const port = await freePort();
      const out = await runExample("guide-reconnect", sample("reconnection"), { ...dht, PORT: String(port) });
      const order = ["Connected to peer:", "Disconnected - waiting for DHT to find new peers...", "Found the new server on the DHT", "Re-dialed the restarted server"];
      let at = -1;
      for (const line of order) {
        const i = out.indexOf(line, at + 1);
        assert.ok(i > at, `"${line}" missing or out of order:\n${out}`);
        at = i;
      }
      assert.ok(count(out, "Connected to peer:") >= 3, out);
    }),
  );

  it("Browser considerations: a client given one server learns the other from it (`servers`) and links to both", { timeout: TEST_TIMEOUT }, () =>
    withDht(async (dht) => {
      const port = await freePort();
      const out = await runExample("guide-browser", sample("browser"), { ...dht, PORT: String(port) });
      assert.match(out, new RegExp(`Learned server 127\\.0\\.0\\.3:${port}`));
      assert.doesNotMatch(out, /Learned server 127\.0\.0\.2/); // the server it was given is not "learned"
      assert.match(out, /Connected to 2 servers/);
    }),
  );

  for (const name of ["complete-guide-class", "complete-packaged"] as const) {
    it(`Complete example (${name}): starts, announces, stops by itself`, { timeout: TEST_TIMEOUT }, () =>
      withDht(async (dht) => {
        const port = await freePort();
        const out = await runExample(`guide-${name}`, sample(name), { ...dht, HOST: "127.0.0.2", PORT: String(port), RUN_MS: "800" });
        assert.match(out, new RegExp(`Server started on 127\\.0\\.0\\.2:${port}`));
        assert.match(out, /DHT topic: my-app-v1/);
      }),
    );

    it(`Complete example (${name}): two servers link, and SIGINT shuts each down cleanly`, { timeout: TEST_TIMEOUT }, () =>
      withDht(async (dht) => {
        const port = String(await freePort());
        const env = { ...dht, PORT: port, RUN_MS: "60000" };
        const servers = [
          startExample(`guide-${name}-a`, sample(name), { ...env, HOST: "127.0.0.2" }),
          startExample(`guide-${name}-b`, sample(name), { ...env, HOST: "127.0.0.3" }),
        ];
        try {
          await Promise.all(servers.map((s) => s.waitFor(/Peer connected: \S+/)));
          const a = await servers[0]!.waitFor(new RegExp(`Discovered peer: 127\\.0\\.0\\.3:${port}`));
          assert.equal(count(a, `Discovered peer: 127.0.0.3:${port}\n`), 1);
          const signalledAt = Date.now();
          for (const s of servers) s.kill("SIGINT");
          const results = await Promise.all(servers.map((s) => s.exited));
          const took = Date.now() - signalledAt;
          for (const r of results) {
            assert.equal(r.code, 0, `exit ${r.code ?? r.signal}:\n${r.err}\n${r.out}`);
            assert.match(r.out, name === "complete-packaged" ? /SIGINT: shut down/ : /Shutting down\.\.\./);
          }
          assert.ok(took < 5000, `SIGINT shutdown took ${took} ms`);
          if (name === "complete-packaged") assert.ok(existsSync(join(results[0]!.cwd, "data")), "LevelDB data under ./data");
        } finally {
          for (const s of servers) s.kill("SIGKILL");
          await Promise.all(servers.map((s) => s.exited));
          for (const s of servers) s.cleanup();
        }
      }),
    );
  }

  it("DHTClient: finds the server on the DHT and a put reaches it", { timeout: TEST_TIMEOUT }, () =>
    withDht(async (dht) => {
      const port = await freePort(["127.0.0.2"]);
      const out = await runExample("guide-dht-client", sample("dht-client"), { ...dht, PORT: String(port) });
      assert.match(out, /^server has: found without an address$/m);
    }),
  );
});
