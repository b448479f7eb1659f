import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** docs/dht-guide.md is an index; its sections, in the guide's order, are these pages (each sample lives in one). */
export const DHT_GUIDE_PARTS = ["setup", "practices", "hyperswarm", "mechanisms", "browsers", "complete"].map((part) => `docs/dht-guide-${part}.md`);

/** The ```ts blocks of a markdown file, in order. */
export function codeBlocks(markdownPath: string): string[] {
  const text = readFileSync(join(repoRoot, markdownPath), "utf8");
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/**
 * Runs a documentation example as an ES module inside the package (so
 * `import "tooldb-dht/..."` resolves to this checkout), in a fresh working
 * directory. Resolves with stdout; rejects on a non-zero exit or a timeout.
 */
export async function runExample(name: string, code: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<string> {
  const dir = join(repoRoot, ".tmp", "examples");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, code);
  const cwd = mkdtempSync(join(tmpdir(), "tooldb-example-"));
  try {
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [file], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (err += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`example ${name} exited with ${code ?? signal}:\n${err}\n${out}`));
      });
    });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}
