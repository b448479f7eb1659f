// The layer rules of .dependency-cruiser.cjs hold on src/, and they really
// catch what they forbid: an upward import, a cycle and a concrete adapter
// picked by the node, each planted in a scratch tree under the same config.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url)); // dist/test/ -> the repository
const cli = join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
const MAX_LINES = 400;

/** Runs the layer check in `cwd` on its src/; resolves the exit code and the report. */
function layerCheck(cwd: string): Promise<{ code: number; out: string }> {
  const args = [cli, "src", "--config", join(root, ".dependency-cruiser.cjs"), "--output-type", "err"];
  return new Promise((done) =>
    execFile(process.execPath, args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      done({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}

function scratchTree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "tooldb-layers-"));
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true } }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("layers", { timeout: 120_000 }, () => {
  it("src/ keeps the layer rules: no upward import, no cycle, no concrete adapter below the platform", async () => {
    const { code, out } = await layerCheck(root);
    assert.equal(code, 0, out);
    assert.match(out, /no dependency violations found \((\d{3,}) modules/);
  });

  it("an upward import, a cycle and a concrete adapter in the node are each reported", async () => {
    const dir = scratchTree({
      "src/base/clock.ts": 'import { ToolDb } from "../node/tooldb.js";\nexport const clock = ToolDb;\n',
      "src/node/tooldb.ts": 'import { MemoryStore } from "../stores/memory-store.js";\nimport { b } from "./b.js";\nexport const ToolDb = [MemoryStore, b];\n',
      "src/node/b.ts": 'import { ToolDb } from "./tooldb.js";\nexport const b = () => ToolDb;\n',
      "src/stores/memory-store.ts": "export class MemoryStore {}\n",
      "src/index.ts": 'export { clock } from "./base/clock.js";\n',
    });
    try {
      const { code, out } = await layerCheck(dir);
      assert.notEqual(code, 0, out);
      assert.match(out, /base-imports-no-layer-above: src\/base\/clock\.ts → src\/node\/tooldb\.ts/);
      assert.match(out, /no-circular: src\/node\/(tooldb|b)\.ts →\s+src\/node\/(b|tooldb)\.ts/);
      assert.match(out, /node-and-services-pick-no-concrete-adapter: src\/node\/tooldb\.ts → src\/stores\/memory-store\.ts/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`no file under src/ is over ${MAX_LINES} lines`, () => {
    const long = sourceFiles(join(root, "src"))
      .map((file) => ({ file: file.slice(root.length), lines: readFileSync(file, "utf8").split("\n").length - 1 }))
      .filter(({ lines }) => lines > MAX_LINES);
    assert.deepEqual(long, []);
  });
});
