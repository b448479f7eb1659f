/**
 * The ToolDb guide's own samples (test/fixtures: a verbatim copy of the
 * guide's "Node.js DHT Discovery" page) run as separate processes with ONLY
 * their imports changed (by the fixed table below) and the address constant
 * set to a loopback address. Nothing in them names a bootstrap node: they are
 * pointed at a private DHT on loopback by TOOLDB_DHT_BOOTSTRAP alone. The
 * TypeScript is run after type erasure (esbuild), which changes no code.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";
import { startBootstrapNode } from "../src/entries/discovery.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const GUIDE = join(repoRoot, "test", "fixtures", "tool-db-guide-nodejs-dht-discovery.md");

/** tool-db import → tooldb-dht import: the README's "Coming from tool-db" table, nothing else. */
const IMPORTS: Record<string, string> = {
  'import { ToolDb } from "tool-db";': 'import { ToolDb } from "tooldb-dht";',
  'import ToolDbWebsocket from "@tool-db/websocket-network";': 'import { WebSocketNetwork as ToolDbWebsocket } from "tooldb-dht/network";',
  'import ToolDbLeveldb from "@tool-db/leveldb-store";': 'import { LevelStore as ToolDbLeveldb } from "tooldb-dht/stores";',
  'import EcdsaUser from "@tool-db/ecdsa-user";': 'import { EcdsaUser } from "tooldb-dht/users";',
  'import DC from "discovery-channel";': 'import DC from "tooldb-dht/discovery";',
};
/** IndexedDB exists only in browsers: in Node the client sample gets the Node store under the same name. */
const INDEXEDDB_IMPORT = 'import ToolDbIndexeddb from "@tool-db/indexeddb-store";';
const INDEXEDDB_BROWSER = 'import { IndexedDbStore as ToolDbIndexeddb } from "tooldb-dht/stores";';
const INDEXEDDB_NODE = 'import { LevelStore as ToolDbIndexeddb } from "tooldb-dht/stores";';

/** The guide's ```ts blocks that open with its section's title. */
function guideSample(section: string): string {
  const text = readFileSync(GUIDE, "utf8");
  const at = text.indexOf(`## ${section}\n`);
  assert.ok(at >= 0, `section ${section} in the guide`);
  const block = /```ts\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(block, `a sample in ${section}`);
  return block[1]!;
}

/** Rewrites the import lines by the table (each must be in it) and `const MY_IP = ...` to loopback; every other line stays. */
function withOurImports(code: string, indexedDb = INDEXEDDB_NODE): string {
  const lines = code.split("\n").map((line) => {
    if (line.startsWith("import ")) {
      const ours = line === INDEXEDDB_IMPORT ? indexedDb : IMPORTS[line];
      assert.ok(ours, `no mapping for ${line}`);
      return ours;
    }
    return line.startsWith("const MY_IP = ") ? 'const MY_IP = "127.0.0.1"; // the guide: "your-server-ip.com"' : line;
  });
  return lines.join("\n");
}

async function toModule(name: string, ts: string): Promise<string> {
  const { code } = await transform(ts, { loader: "ts", format: "esm", target: "node20" });
  const dir = join(repoRoot, ".tmp", "guide-unchanged");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, code);
  return file;
}

interface Proc {
  /** Resolves once stdout+stderr match `re`; rejects if the process exits first or after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>;
  output(): string;
}

function run(file: string, env: Record<string, string>): Proc {
  const cwd = mkdtempSync(join(tmpdir(), "tooldb-guide-unchanged-"));
  const child = spawn(process.execPath, [file], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const changed = new Set<() => void>();
  const onData = (d: Buffer) => {
    output += d;
    for (const f of changed) f();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      clearTimeout(killer);
      rmSync(cwd, { recursive: true, force: true });
      for (const f of changed) f();
      resolve({ code, signal });
    }),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    output: () => output,
    waitFor: (re, ms = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const finish = (err?: Error) => {
          clearTimeout(timer);
          changed.delete(check);
          if (err) reject(err);
          else resolve();
        };
        const check = () => {
          if (re.test(output)) finish();
          else if (done) finish(new Error(`${file} exited before printing ${re}:\n${output}`));
        };
        const timer = setTimeout(() => finish(new Error(`${file}: no ${re} within ${ms} ms:\n${output}`)), ms);
        changed.add(check);
        check();
      }),
    stop: async (signal = "SIGTERM") => {
      if (!done) child.kill(signal);
      return { ...(await exited), output };
    },
  };
}

async function withPrivateDht<T>(fn: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
  try {
    // DEBUG shows each node's handshakes on stderr: how the test sees the samples link without touching them.
    return await fn({ TOOLDB_DHT_BOOTSTRAP: `127.0.0.1:${seed.address().port}`, DEBUG: "tooldb:*" });
  } finally {
    await seed.close();
  }
}

describe("the tool-db guide's samples, only imports changed, on a private DHT named by TOOLDB_DHT_BOOTSTRAP", () => {
  it("only import lines and the address constant differ from the guide", () => {
    for (const section of ["Server Setup", "Client Setup", "Complete Example"]) {
      const original = guideSample(section).split("\n");
      const ours = withOurImports(guideSample(section)).split("\n");
      assert.equal(ours.length, original.length);
      const changed = original.filter((line, i) => line !== ours[i]);
      assert.ok(changed.every((line) => line.startsWith("import ") || line.startsWith("const MY_IP = ")), `${section}: ${changed.join(" | ")}`);
      assert.doesNotMatch(ours.join("\n"), /bootstrap/i, `${section} names no bootstrap`);
    }
  });

  it("the samples type-check against the package under strict TypeScript (nodenext), as a TypeScript app would compile them", { timeout: 120_000 }, async () => {
    const dir = join(repoRoot, ".tmp", "guide-types");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const sections = { server: "Server Setup", client: "Client Setup", complete: "Complete Example" };
    for (const [name, section] of Object.entries(sections)) writeFileSync(join(dir, `${name}.ts`), withOurImports(guideSample(section)));
    // Inside the package's root, "tooldb-dht" resolves to the package itself through its exports (its built types).
    const compilerOptions = { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", noEmit: true, skipLibCheck: true, types: ["node"] };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files: Object.keys(sections).map((n) => `${n}.ts`) }));
    const tsc = spawn(process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    tsc.stdout.on("data", (d: Buffer) => (output += d));
    tsc.stderr.on("data", (d: Buffer) => (output += d));
    const code = await new Promise<number | null>((resolve) => tsc.on("exit", resolve));
    assert.equal(code, 0, output);
  });

  it("Server Setup and Client Setup: the client finds the server on the DHT and links to it", { timeout: 90_000 }, () =>
    withPrivateDht(async (env) => {
      const server = run(await toModule("server", withOurImports(guideSample("Server Setup"))), env);
      const client = run(await toModule("client", withOurImports(guideSample("Client Setup"))), env);
      try {
        await server.waitFor(/Server running on 127\.0\.0\.1:9000/);
        await server.waitFor(/Announcing on DHT topic: my-app-topic/);
        await client.waitFor(/Discovering peers on topic: my-app-topic/);
        await client.waitFor(/Server peer found: \{ host: '127\.0\.0\.1', port: 9000 \}/);
        await client.waitFor(/session open \S+ \(out\)/);
        await server.waitFor(/session open \S+ \(in\)/);
        // The server found its own announce and, as the guide says, did not dial itself.
        assert.doesNotMatch(server.output(), /session open \S+ \(out\)/);
      } finally {
        await client.stop();
        await server.stop();
      }
    }),
  );

  it("Client Setup with IndexedDB: in Node there is no indexedDB, so it fails at `await client.ready` with that reason", { timeout: 30_000 }, () =>
    withPrivateDht(async (env) => {
      const client = run(await toModule("client-indexeddb", withOurImports(guideSample("Client Setup"), INDEXEDDB_BROWSER)), env);
      await client.waitFor(/cannot open IndexedDB at tooldb: indexedDB is not defined/);
      const { code } = await client.stop();
      assert.notEqual(code, 0);
    }),
  );

  it("Complete Example: two servers (HOST/PORT as the sample reads them) find and link to each other, and stop on SIGINT", { timeout: 90_000 }, () =>
    withPrivateDht(async (env) => {
      const file = await toModule("complete", withOurImports(guideSample("Complete Example")));
      const a = run(file, { ...env, HOST: "127.0.0.1", PORT: "9101" });
      const b = run(file, { ...env, HOST: "127.0.0.1", PORT: "9102" });
      try {
        await a.waitFor(/Server started on 127\.0\.0\.1:9101/);
        await b.waitFor(/Server started on 127\.0\.0\.1:9102/);
        await a.waitFor(/Discovered peer: 127\.0\.0\.1:9102/);
        await b.waitFor(/Discovered peer: 127\.0\.0\.1:9101/);
        await a.waitFor(/Peer connected: \S+/);
        await b.waitFor(/Peer connected: \S+/);
      } finally {
        const [ea, eb] = [await a.stop("SIGINT"), await b.stop("SIGINT")];
        assert.match(ea.output, /Shutting down\.\.\./);
        assert.equal(ea.code, 0, ea.output);
        assert.equal(eb.code, 0, eb.output);
      }
    }),
  );
});
