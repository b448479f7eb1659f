import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

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
  const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, out, err });
    });
  });
  return { child, exited };
}
