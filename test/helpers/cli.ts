import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { startBootstrapNode, type BootstrapNode } from "../../src/entries/discovery.js";
import { fileURLToPath } from "node:url";

export const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** What a describe block's CLI runs share: a local DHT bootstrap node (`host:port`) and a scratch directory. */
export interface CliScratch {
  readonly dir: string;
  readonly bootstrap: string;
}

/**
 * Starts a local DHT bootstrap node and makes a scratch directory (named
 * `<prefix>…`) before the describe block that calls it, and removes both
 * after it; read its fields inside the tests.
 */
export function cliScratch(prefix: string): CliScratch {
  let seed: BootstrapNode | undefined;
  let dir = "";
  before(async () => {
    seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(async () => {
    await seed?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    get bootstrap() {
      return `127.0.0.1:${seed!.address().port}`;
    },
  };
}

export type CliChild = ReturnType<typeof spawn>;

/** Where the child runs (default: this process's cwd) and its environment (default: this process's). */
export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs `tooldb-dht <args>` in a child process; `onLine` sees each stdout
 * line as it comes (e.g. to signal the child). Killed after 20 s (or `killAfterMs`) at most.
 */
export function run(args: string[], onLine?: (line: string, child: CliChild) => void, killAfterMs = 20_000, options: RunOptions = {}) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"], ...options });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d;
    for (const line of d.toString().split("\n")) if (line) onLine?.(line, child);
  });
  child.stderr!.on("data", (d: Buffer) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("exit", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, out, err });
    });
  });
  return { child, exited };
}

/**
 * RunOptions (default: this process's cwd and environment) under which a
 * run appends the URL of every module it loads to `file` (see
 * module-log.ts); loadedModules(file) reads them back.
 */
export function recordModules(file: string, options: RunOptions = {}): RunOptions {
  const env = options.env ?? process.env;
  const preload = `--import=${new URL("./module-log.js", import.meta.url).href}`;
  return { ...options, env: { ...env, TOOLDB_MODULE_LOG: file, NODE_OPTIONS: [env.NODE_OPTIONS, preload].filter(Boolean).join(" ") } };
}

/** The module URLs a run under recordModules(file) loaded (none when it wrote none). */
export function loadedModules(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

const HANG_MS = 15_000;
/** A failing command exits within this (issue 22). */
const FAIL_FAST_MS = 5_000;

/**
 * Runs the CLI to its exit (killed as hanging after 15 s) and checks the
 * contract of a failure: exit `code` within 5 s, one line of reason on
 * stderr (`tooldb-dht: ...`). Prints how long it took.
 */
export async function fails(args: string[], code: number, options?: RunOptions): Promise<{ line: string; out: string }> {
  const started = performance.now();
  const result = await run(args, undefined, HANG_MS, options).exited;
  const ms = performance.now() - started;
  process.stdout.write(`# tooldb-dht ${args.join(" ")}: exit ${result.code} after ${Math.round(ms)} ms\n`);
  assert.equal(result.code, code, `tooldb-dht ${args.join(" ")}: exit ${result.code}, wanted ${code}\nstdout: ${result.out}\nstderr: ${result.err}`);
  // The contract users rely on (fail fast, never hang), not a speed figure: runs take 0.2-1.4 s in CI.
  assert.ok(ms < FAIL_FAST_MS, `tooldb-dht ${args.join(" ")} took ${Math.round(ms)} ms to fail, over ${FAIL_FAST_MS} ms`);
  const lines = result.err.trim().split("\n");
  assert.equal(lines.length, 1, `one line of reason, got:\n${result.err}`);
  assert.match(lines[0]!, /^tooldb-dht: \S/);
  return { line: lines[0]!, out: result.out };
}

/** The reason line of a failing run. */
export async function failsWith(args: string[], code: number, options?: RunOptions): Promise<string> {
  return (await fails(args, code, options)).line;
}

/**
 * Runs `check` for every item, at most `width` at once (default 2): a CLI
 * run is a node process start, mostly CPU on one core (run one after
 * another, 13 of them took 10 s on a 2-core box). Two at once use both
 * cores; three ran 2-3.2 s each at load 8, too near the 5 s fail-fast
 * bound. Each run still gets its own exit, reason and fail-fast check; the
 * first failure rejects.
 */
export async function eachAtOnce<T>(items: readonly T[], check: (item: T) => Promise<void>, width = 2): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await check(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/** A TCP port with nothing listening. */
export async function closedTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
