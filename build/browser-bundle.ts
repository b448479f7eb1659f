/**
 * Builds the browser ESM bundle (dist/browser/tooldb-dht.js) from the
 * browser entry, for pages without a bundler:
 *
 *   <script type="module">import { ToolDb } from "/tooldb-dht.js"; …</script>
 *
 * Run by `npm run build` after tsc. The metafile lists every input, so tests
 * can check that nothing Node-only reached the browser graph.
 */
import { build, type Metafile } from "esbuild";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/** The repository root (this file runs from dist/build/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BROWSER_BUNDLE = join(ROOT, "dist/browser/tooldb-dht.js");

/** Inputs that must never be in the browser graph. */
export const NODE_ONLY = [/(^|\/)node_modules\/(ws|classic-level|bittorrent-dht|hyperswarm|hyperdht|node-datachannel)\//, /^node:/, /(^|\/)src\/network\/websocket-network\./, /(^|\/)src\/stores\/level-store\./];

export interface BundleResult {
  code: Uint8Array;
  metafile: Metafile;
}

/** Bundles `entry` (default: the page bundle's entry, the browser entry with WebRtcNetwork) for browsers, minified. */
export async function bundle(options: { entry?: string; platform?: "browser" | "node"; minify?: boolean } = {}): Promise<BundleResult> {
  const platform = options.platform ?? "browser";
  const result = await build({
    entryPoints: [options.entry ?? join(ROOT, "dist/src/entries/browser-bundle.js")],
    bundle: true,
    format: "esm",
    platform,
    target: platform === "browser" ? ["chrome120", "firefox120", "safari17"] : ["node20"],
    minify: options.minify ?? true,
    // In the Node bundle (a size comparison only) native addons and built-ins stay outside.
    external: platform === "node" ? ["node:*"] : [],
    // bittorrent-tracker's client reads `process.browser` unguarded (browserify's convention).
    define: { "process.browser": platform === "browser" ? "true" : "false" },
    metafile: true,
    write: false,
    logLevel: "silent",
  });
  return { code: result.outputFiles[0]!.contents, metafile: result.metafile };
}

/** Inputs of a metafile that match NODE_ONLY (empty for a clean browser graph). */
export function nodeOnlyInputs(metafile: Metafile): string[] {
  return Object.keys(metafile.inputs).filter((path) => NODE_ONLY.some((re) => re.test(path)));
}

export interface BundleSizes {
  browserMin: number;
  browserGzip: number;
  nodeMin: number;
  nodeGzip: number;
  /** Bytes (minified) the Node bundle spends on inputs the browser graph does not have, by package or file. */
  excluded: Array<{ name: string; bytes: number }>;
}

/** Sizes of the browser bundle beside the Node entry bundled the same way. */
export async function bundleSizes(): Promise<BundleSizes> {
  const browser = await bundle();
  const node = await bundle({ entry: join(ROOT, "dist/src/index.js"), platform: "node" });
  const inBrowser = new Set(Object.keys(browser.metafile.inputs));
  const excluded = new Map<string, number>();
  for (const output of Object.values(node.metafile.outputs)) {
    for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
      if (inBrowser.has(path) || bytesInOutput === 0) continue;
      const name = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(path)?.[1] ?? path.replace(/^.*dist\//, "");
      excluded.set(name, (excluded.get(name) ?? 0) + bytesInOutput);
    }
  }
  return {
    browserMin: browser.code.length,
    browserGzip: gzipSync(browser.code).length,
    nodeMin: node.code.length,
    nodeGzip: gzipSync(node.code).length,
    excluded: [...excluded].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes),
  };
}

export function printBundleSizes(s: BundleSizes, print: (line: string) => void): void {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  print(`browser bundle (dist/browser/tooldb-dht.js): ${kib(s.browserMin)} minified, ${kib(s.browserGzip)} gzipped`);
  print(`Node entry bundled the same way (node: built-ins external): ${kib(s.nodeMin)} minified, ${kib(s.nodeGzip)} gzipped (browser/Node ${(s.browserGzip / s.nodeGzip).toFixed(2)} gzipped)`);
  print(`Node-only parts left out of the browser bundle (minified bytes in the Node bundle): ${s.excluded.map((e) => `${e.name} ${kib(e.bytes)}`).join(", ")}`);
}

async function main(): Promise<void> {
  const { code, metafile } = await bundle();
  const bad = nodeOnlyInputs(metafile);
  if (bad.length > 0) throw new Error(`Node-only inputs in the browser bundle: ${bad.join(", ")}`);
  await mkdir(dirname(BROWSER_BUNDLE), { recursive: true });
  await writeFile(BROWSER_BUNDLE, code);
  await writeFile(`${BROWSER_BUNDLE.slice(0, -3)}.meta.json`, JSON.stringify(metafile));
  if (process.argv.includes("--sizes")) printBundleSizes(await bundleSizes(), (line) => console.log(line));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
