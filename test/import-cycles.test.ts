// No import cycles in src/ (the layering rule: arrows point down only).
// The import graph is the compiler's own: `tsc --explainFiles` lists, for
// every file of the program, each import that pulled it in, as resolved by
// the project's tsconfig. Type-only imports (`import type`, `import("...")`
// types) count too: a type cycle is still two modules that cannot be
// understood, moved or tested apart.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url)); // dist/test/ -> the repository
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

type Graph = Map<string, Set<string>>;

/** importer -> imported, for files under src/ (paths relative to the repository). */
async function srcImportGraph(): Promise<Graph> {
  // A throwaway tsconfig: the project's settings, only src/ as roots.
  const dir = mkdtempSync(join(tmpdir(), "tooldb-cycles-"));
  try {
    const config = join(dir, "tsconfig.json");
    writeFileSync(config, JSON.stringify({ extends: join(root, "tsconfig.json"), include: [join(root, "src")] }));
    const out = await new Promise<string>((done, fail) => {
      execFile(process.execPath, [tsc, "-p", config, "--explainFiles", "--noEmit", "--noCheck"], { cwd: root, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) fail(new Error(`tsc failed: ${err.message}\n${stdout.slice(0, 2000)}\n${stderr.slice(0, 2000)}`));
        else done(stdout);
      });
    });
    return parseExplainFiles(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `tsc --explainFiles` prints a file, then indented lines such as `Imported via "./x.js" from file 'src/a.ts'`. */
function parseExplainFiles(out: string): Graph {
  const inSrc = (file: string) => {
    const rel = relative(root, resolve(root, file)).split("\\").join("/");
    return rel.startsWith("src/") ? rel : undefined;
  };
  const graph: Graph = new Map();
  let imported: string | undefined;
  for (const line of out.split("\n")) {
    if (!line.startsWith(" ")) {
      imported = inSrc(line.trim());
      continue;
    }
    const from = /^\s+Imported via .* from file '(.+)'/.exec(line)?.[1];
    const importer = from === undefined ? undefined : inSrc(from);
    if (!imported || !importer) continue;
    if (!graph.has(importer)) graph.set(importer, new Set());
    graph.get(importer)!.add(imported);
  }
  return graph;
}

/** One cycle (as a path a -> b -> ... -> a) per strongly connected component that has one. */
function findCycles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = new Set<string>();
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.add(w);
    } while (w !== v);
    if (component.size > 1 || graph.get(v)?.has(v)) cycles.push(cycleThrough(v, component, graph));
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** A shortest path from `start` back to itself inside its component (breadth first). */
function cycleThrough(start: string, component: Set<string>, graph: Graph): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(w) && w !== start) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

describe("import cycles", () => {
  it("the cycle finder finds cycles (and only cycles)", () => {
    const g = (edges: Array<[string, string]>): Graph => {
      const graph: Graph = new Map();
      for (const [a, b] of edges) graph.set(a, (graph.get(a) ?? new Set()).add(b));
      return graph;
    };
    assert.deepEqual(findCycles(g([["a", "b"], ["b", "c"], ["a", "c"]])), []);
    assert.deepEqual(findCycles(g([["a", "b"], ["b", "c"], ["c", "a"], ["c", "d"]])), [["a", "b", "c", "a"]]);
    assert.deepEqual(findCycles(g([["a", "a"]])), [["a", "a"]]);
    assert.equal(findCycles(g([["a", "b"], ["b", "a"], ["c", "d"], ["d", "c"]])).length, 2);
  });

  it("src/ has none, type-only imports included", { timeout: 120_000 }, async () => {
    const graph = await srcImportGraph();
    // The graph is really read (a changed tsc output format must fail here, not pass silently).
    const edges = [...graph.values()].reduce((n, s) => n + s.size, 0);
    assert.ok(edges > 300, `only ${edges} imports read from tsc --explainFiles`);
    assert.ok(graph.get("src/node/tooldb.ts")?.has("src/node/protocol.ts"), "tooldb.ts -> protocol.ts not seen");
    assert.ok(graph.get("src/node/protocol.ts")?.has("src/node/node-context.ts"), "a type-only import (protocol.ts -> node-context.ts) not seen");
    const cycles = findCycles(graph);
    assert.deepEqual(cycles.map((c) => c.join(" -> ")), [], "import cycles in src/");
  });
});
