import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type PluginBuild, build } from "esbuild";
import { BROWSER_BUNDLE, ROOT, bundle, nodeOnlyInputs } from "../build/browser-bundle.js";

const CONCRETE_ADAPTERS = /src\/(network\/(websocket-network|ws-connection|browser-websocket-network)|stores\/(memory-store|level-store|indexeddb-store|abstract-level-store)|users\/ecdsa-user)\.js$/;

describe("browser bundle", () => {
  it("the browser graph has no ws, classic-level, bittorrent-dht, hyperswarm or node: input, and has the browser adapters", async () => {
    const { metafile } = await bundle();
    const inputs = Object.keys(metafile.inputs);
    assert.deepEqual(nodeOnlyInputs(metafile), []);
    for (const wanted of ["dist/src/network/browser-websocket-network.js", "dist/src/stores/indexeddb-store.js", "dist/src/users/ecdsa-user.js"]) {
      assert.ok(inputs.includes(wanted), `${wanted} missing from the browser graph`);
    }
    assert.ok(inputs.some((p) => p.includes("node_modules/browser-level/")), "browser-level missing");
  });

  it("the Node entry's graph does have the Node-only parts (the check above can fail)", async () => {
    const { metafile } = await bundle({ entry: join(ROOT, "dist/src/index.js"), platform: "node" });
    const bad = nodeOnlyInputs(metafile);
    assert.ok(bad.some((p) => p.includes("node_modules/ws/")), "ws expected in the Node graph");
    assert.ok(bad.some((p) => p.includes("node_modules/classic-level/")), "classic-level expected in the Node graph");
  });

  it("the database core imports no concrete transport, store or user class", async () => {
    const { metafile } = await bundle({ entry: join(ROOT, "dist/src/entries/core.js") });
    assert.deepEqual(Object.keys(metafile.inputs).filter((p) => CONCRETE_ADAPTERS.test(p)), []);
    assert.deepEqual(nodeOnlyInputs(metafile), []);
  });

  it('a bundler resolving "tooldb-dht" for browsers takes the "browser" export condition', async () => {
    const result = await build({
      stdin: { contents: 'export { ToolDb, WebSocketNetwork, IndexedDbStore } from "tooldb-dht";', resolveDir: ROOT },
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.includes("dist/src/browser.js"));
    assert.deepEqual(nodeOnlyInputs(result.metafile), []);
  });

  it('an app bundling "tooldb-dht" for browsers builds without the optional WebRTC peers installed; "tooldb-dht/webrtc" is what needs them', async () => {
    // The optional peers made unresolvable, as in an app that did not install them.
    const absent = {
      name: "optional-peers-absent",
      setup(b: PluginBuild) {
        b.onResolve({ filter: /^(bittorrent-tracker|webrtc-polyfill)(\/|$)/ }, (args) => ({ errors: [{ text: `${args.path} is not installed` }] }));
      },
    };
    const app = (contents: string) => build({ stdin: { contents, resolveDir: ROOT }, bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent", plugins: [absent] });
    const plain = await app('import { ToolDb, WebSocketNetwork } from "tooldb-dht"; export const db = new ToolDb({ networkAdapter: WebSocketNetwork });');
    assert.equal(plain.errors.length, 0);
    await assert.rejects(app('export { WebRtcNetwork } from "tooldb-dht/webrtc";'), /bittorrent-tracker\/client is not installed/);
  });

  it("the prebuilt page bundle has WebRtcNetwork inside", async () => {
    const { metafile } = await bundle();
    assert.ok(Object.keys(metafile.inputs).includes("dist/src/entries/webrtc-browser.js"));
  });

  it("npm run build wrote the bundle with a clean metafile", async () => {
    const code = await readFile(BROWSER_BUNDLE, "utf8");
    assert.match(code, /export\s*\{/);
    const meta = JSON.parse(await readFile(BROWSER_BUNDLE.replace(/\.js$/, ".meta.json"), "utf8"));
    assert.deepEqual(nodeOnlyInputs(meta), []);
  });
});
