/**
 * `npm pack` is the product: the tarball, installed into a fresh app with
 * nothing but the npm registry (or its cache), runs the README's examples (and the API pages', once the README's) by
 * package name, serves `serve --web` to Chromium from its own files, and
 * type-checks every TypeScript example of the README and docs under strict
 * nodenext with skipLibCheck off.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { ROOT } from "../build/browser-bundle.js";
import { startBootstrapNode } from "../src/entries/discovery.js";
import { launchChromium } from "./helpers/chromium.js";
import { codeBlocks } from "./helpers/doc-examples.js";
import { type InstalledApp, type Packed, installApp, packCheckout, runCommand } from "./helpers/packed-app.js";

const rootPackage = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
const DOCS = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

describe("the packed package, installed into a fresh app", { timeout: 600_000 }, () => {
  let work: string;
  let packed: Packed;
  let app: InstalledApp;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "tooldb-pack-"));
    packed = await packCheckout(work);
    app = await installApp(packed.tarball, rootPackage.devDependencies["@types/node"]!);
    process.stdout.write(`# npm pack: ${packed.files.length} files, ${packed.size} bytes (${packed.unpackedSize} unpacked); install into a fresh app: ${Math.round(app.install.ms)} ms\n`);
  });

  after(() => {
    rmSync(work, { recursive: true, force: true });
    if (app) rmSync(app.dir, { recursive: true, force: true });
  });

  /** Skips (saying why) where npm can reach neither the registry nor a cache that has everything; fails on any other install error. */
  function installed(t: { skip(message: string): void }): boolean {
    if (app.unreachable) {
      t.skip(`npm could not reach the registry and its cache lacks packages (${app.unreachable})`);
      return false;
    }
    assert.equal(app.install.code, 0, `npm install of the tarball failed:\n${app.install.out}`);
    return true;
  }

  it("ships the built code, the browser bundle, the ambient types and what the README links to, and nothing of the tests", () => {
    // The README links the changelog and the examples; package.json says MIT, so the licence text goes along.
    const linked = ["CHANGELOG.md", "LICENSE", "examples/README.md", "examples/node/server.mjs", "examples/browser-chat/chat.html"];
    for (const needed of ["dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "dist/browser/tooldb-dht.js", "types/bittorrent-dht.d.ts", "types/hyperswarm.d.ts", "README.md", ...linked]) {
      assert.ok(packed.files.includes(needed), `${needed} missing from the tarball`);
    }
    assert.deepEqual(packed.files.filter((f) => /^dist\/(test|bench|faults|build)\//.test(f)), []);
  });

  it("installs with install scripts on and no WebRTC native build (the Node WebRTC stack is an optional peer)", async (t) => {
    if (!installed(t)) return;
    const tree = await runCommand("npm", ["ls", "--all", "--parseable"], { cwd: app.dir, timeoutMs: 60_000 });
    assert.doesNotMatch(tree.out, /node-datachannel|webrtc-polyfill/, "a WebRTC native module came with the default install");
    // Without the optional peers, the browser entry still loads (WebRtcNetwork comes from "tooldb-dht/webrtc").
    const out = await runExample(app.dir, "browser-entry", `const m = await import("tooldb-dht/browser"); console.log(typeof m.ToolDb, "WebRtcNetwork" in m);`);
    assert.match(out, /^function false$/m);
  });

  it("runs the README's server-and-client and DHT discovery examples and docs/api.md's CRDT example by package name", async (t) => {
    if (!installed(t)) return;
    const blocks = codeBlocks("README.md");
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    try {
      const first = await runExample(app.dir, "server-client", blocks[0]!);
      assert.match(first, /greeting is now hello/);
      const dht = await runExample(app.dir, "dht", blocks[1]!, { DHT_BOOTSTRAP: `127.0.0.1:${seed.address().port}` });
      assert.match(dht, /^hello$/m);
      const crdt = await runExample(app.dir, "crdt", codeBlocks("docs/api.md").find((b) => b.includes("MapCrdt"))!);
      assert.match(crdt, /^\{"theme":"dark"\}$/m);
    } finally {
      await seed.close();
    }
  });

  it("checks a burst of signatures on its verification threads (one fewer than the cores, the main thread helping) and exits on its own", async (t) => {
    if (!installed(t)) return;
    // The threads load dist/src/crypto/verify-worker.js next to the module that starts them: this proves the installed layout has it.
    const out = await runExample(
      app.dir,
      "verify-threads",
      `import { EcdsaUser, signRecord } from "tooldb-dht";
import { verifyPoolStats, verifyWithAddress } from "./node_modules/tooldb-dht/dist/src/crypto/ecdsa.js";
const user = new EcdsaUser();
await user.ready;
await user.anonUser();
const records = await Promise.all(Array.from({ length: 200 }, (_, i) => signRecord(user, "burst/" + i, i, Date.now(), 0, false)));
const forged = { ...records[100], s: records[101].s };
const results = await Promise.all([...records, forged].map((r) => verifyWithAddress(r.h, r.s, r.a)));
console.log(JSON.stringify({ good: results.slice(0, 200).every(Boolean), forged: results[200], pool: verifyPoolStats() ?? null }));`,
    );
    const result = JSON.parse(out.trim().split("\n").at(-1)!) as { good: boolean; forged: boolean; pool: { threads: number; verified: number; helped: number } | null };
    assert.equal(result.good, true);
    assert.equal(result.forged, false);
    const threads = Math.min(availableParallelism() - 1, 16);
    if (threads === 0) assert.equal(result.pool, null, "one core: no threads");
    else {
      assert.deepEqual([result.pool?.threads, result.pool?.verified], [threads, 201], "every check of the burst went to the pool");
      assert.ok(result.pool!.verified - result.pool!.helped > 0, `the threads checked some (the main thread helped with ${result.pool!.helped})`);
    }
  });

  it("runs docs/api-discovery.md's Hyperswarm example (the README's before) on a HyperDHT from the installed `tooldb-dht bootstrap --hyperdht`", async (t) => {
    if (!installed(t)) return;
    const block = codeBlocks("docs/api-discovery.md").find((b) => b.includes("HyperswarmNetwork"))!;
    const bootstrap = startBin(app.dir, ["bootstrap", "--hyperdht", "--host", "127.0.0.1", "--port", "0"]);
    try {
      const line = await bootstrap.line(/--hyperdht-bootstrap (\S+)/);
      const out = await runExample(app.dir, "hyperswarm", block, { TOOLDB_HYPERDHT_BOOTSTRAP: line[1]! });
      assert.match(out, /hello over hyperswarm/);
    } finally {
      await bootstrap.stop();
    }
  });

  it("`tooldb-dht serve --web` from the installed package: Chromium loads the status page and its bundle, and it links", async (t) => {
    if (!installed(t)) return;
    const data = mkdtempSync(join(tmpdir(), "tooldb-app-data-"));
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    const serve = startBin(app.dir, ["serve", "--web", "--topic", "pack-web", "--host", "127.0.0.1", "--port", "0", "--data", join(data, "d"), "--bootstrap", `127.0.0.1:${seed.address().port}`]);
    let browser: Browser | undefined;
    try {
      const url = (await serve.line(/Status page: (\S+)/))[1]!;
      browser = await launchChromium();
      const page = await (await browser.newContext()).newPage();
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(String(err)));
      await page.goto(url);
      // The page's ToolDb (the installed bundle) links to the server and shows what its `status` server function says.
      await page.waitForFunction(
        () => document.getElementById("link")?.textContent?.startsWith("linked") && (document.getElementById("self-address")?.textContent ?? "…") !== "…",
        undefined,
        { timeout: 20_000 },
      );
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      await serve.stop();
      await seed.close();
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("type-checks every example of the README and docs against the installed package (strict, nodenext, skipLibCheck false)", async (t) => {
    if (!installed(t)) return;
    const dir = join(app.dir, "examples");
    mkdirSync(dir);
    let n = 0;
    for (const doc of DOCS) {
      // docs/dht-guide*.md follow the ToolDb guide, whose samples are JavaScript: checked as JavaScript (checkJs, JSDoc types), as they run.
      const ext = doc.startsWith("docs/dht-guide") ? "mjs" : "ts";
      codeBlocks(doc).forEach((code, i) => {
        writeFileSync(join(dir, `${doc.replace(/[/.]/g, "_")}-${i + 1}.${ext}`), `${code}\nexport {};\n`);
        n++;
      });
    }
    assert.ok(n >= 20, `only ${n} examples found`);
    const tsconfig = {
      compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", skipLibCheck: false, noEmit: true, types: ["node"], allowJs: true, checkJs: true },
      include: ["examples/*.ts", "examples/*.mjs"],
    };
    writeFileSync(join(app.dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
    const tsc = await runCommand(join(ROOT, "node_modules/.bin/tsc"), ["-p", "tsconfig.json"], { cwd: app.dir, timeoutMs: 240_000 });
    assert.equal(tsc.code, 0, `tsc found errors in the docs' examples:\n${tsc.out}`);
  });
});

/** Runs `code` as an ES module inside the app (imports resolve to the installed package), in a scratch working directory. */
async function runExample(appDir: string, name: string, code: string, env: Record<string, string> = {}): Promise<string> {
  const file = join(appDir, `${name}.mjs`);
  writeFileSync(file, code);
  const cwd = mkdtempSync(join(tmpdir(), "tooldb-app-run-"));
  try {
    const result = await runCommand(process.execPath, [file], { cwd, timeoutMs: 60_000, env: { ...process.env, ...env } });
    assert.equal(result.code, 0, `example ${name} failed:\n${result.out}`);
    return result.out;
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

/** The installed `tooldb-dht` bin, running: `line(re)` waits for a stdout line; `stop()` sends SIGINT and waits for the exit. */
function startBin(appDir: string, args: string[]) {
  const child = spawn(join(appDir, "node_modules/.bin/tooldb-dht"), args, { cwd: appDir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return {
    line: (re: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within 20 s:\n${out}`)), 20_000);
        const check = () => {
          const m = re.exec(out);
          if (!m) return;
          clearTimeout(timer);
          child.stdout.off("data", check);
          resolve(m);
        };
        child.stdout.on("data", check);
        void exited.then(() => reject(new Error(`tooldb-dht ${args[0]} exited:\n${out}`)));
        check();
      }),
    stop: async () => {
      child.kill("SIGINT");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
