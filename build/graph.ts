/**
 * `npm run graph`: docs/architecture-layers.svg, the folders of src/ in their
 * layers and the imports between them (edge labels: how many), read by the
 * same dependency-cruiser run and config as the layer check (`npm run
 * layers`). Graphviz runs as WebAssembly (@viz-js/viz): no system package.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { instance } from "@viz-js/viz";

const ROOT = fileURLToPath(new URL("../../", import.meta.url)); // dist/build/ -> the repository
const OUT = join(ROOT, "docs", "architecture-layers.svg");
const { layers } = createRequire(import.meta.url)(join(ROOT, ".dependency-cruiser.cjs")) as { layers: [string, string][] };

interface Cruise {
  modules: { source: string; dependencies: { resolved: string }[] }[];
}

function cruise(): Promise<Cruise> {
  const cli = join(ROOT, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
  const args = [cli, "src", "--config", ".dependency-cruiser.cjs", "--output-type", "json"];
  return new Promise((done, fail) =>
    execFile(process.execPath, args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? fail(new Error(`dependency-cruiser failed: ${err.message}\n${stderr}`)) : done(JSON.parse(stdout) as Cruise),
    ),
  );
}

/** src/node/sync/x.ts -> node/sync; src/index.ts -> index.ts */
function folderOf(file: string): string {
  const parts = file.replace(/^src\//, "").split("/");
  if (parts.length === 1) return parts[0]!;
  return parts[0] === "node" && parts[1] === "sync" ? "node/sync" : parts[0]!;
}

function layerOf(file: string): string {
  return layers.find(([, path]) => new RegExp(path).test(file))?.[0] ?? "other";
}

const result = await cruise();
const folders = new Map<string, string>(); // folder -> layer
const edges = new Map<string, number>(); // "a\tb" -> imports
for (const m of result.modules) {
  const from = folderOf(m.source);
  folders.set(from, layerOf(m.source));
  for (const d of m.dependencies) {
    const to = folderOf(d.resolved);
    if (to !== from) edges.set(`${from}\t${to}`, (edges.get(`${from}\t${to}`) ?? 0) + 1);
  }
}

const lines = ["digraph layers {", '  rankdir=BT; node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica"];', '  edge [color="#666666", fontname="Helvetica", fontsize=9];'];
for (const [i, [layer]] of layers.entries()) {
  lines.push(`  subgraph cluster_${layer} { label="${i} ${layer}"; style=dashed; fontname="Helvetica";`);
  for (const [folder, l] of folders) if (l === layer) lines.push(`    "${folder}";`);
  lines.push("  }");
}
for (const [key, n] of edges) {
  const [a, b] = key.split("\t");
  lines.push(`  "${a}" -> "${b}" [label="${n}"];`);
}
lines.push("}");

const viz = await instance();
writeFileSync(OUT, viz.renderString(lines.join("\n"), { format: "svg" }));
process.stdout.write(`wrote ${OUT}: ${folders.size} folders, ${edges.size} arrows\n`);
