/**
 * The package as a user gets it: `npm pack` of this checkout, installed into
 * a fresh app in a temp directory by `npm install` (the npm registry, or
 * npm's cache, only; install scripts run as for any user).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../build/browser-bundle.js";

export interface Packed {
  tarball: string;
  files: string[];
  /** Bytes of the tarball and of its files unpacked. */
  size: number;
  unpackedSize: number;
}

export interface CommandResult {
  code: number | null;
  out: string;
  ms: number;
}

/** Runs a command, collecting stdout and stderr together; killed after `timeoutMs`. */
export function runCommand(command: string, args: string[], options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<CommandResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: performance.now() - started });
    });
  });
}

/** `npm pack` of the checkout (already built: scripts are skipped, prepack would rebuild). */
export async function packCheckout(destination: string): Promise<Packed> {
  const { code, out } = await runCommand("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", destination], { cwd: ROOT, timeoutMs: 120_000 });
  if (code !== 0) throw new Error(`npm pack failed:\n${out}`);
  const [info] = JSON.parse(out.slice(out.indexOf("["))) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
  return { tarball: join(destination, info!.filename), files: info!.files.map((f) => f.path), size: info!.size, unpackedSize: info!.unpackedSize };
}

/** npm's error codes for a registry it could not reach, or a package missing from an offline cache. */
const UNREACHABLE = /npm (?:error|ERR!) code (?:ENOTCACHED|EAI_AGAIN|ENETUNREACH|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND)\b/;

export interface InstalledApp {
  dir: string;
  install: CommandResult;
  /** Set when npm could not reach the registry and its cache lacked what the install needs. */
  unreachable?: string;
}

/** A fresh ESM app depending on the tarball (and @types/node for the type check), installed. */
export async function installApp(tarball: string, nodeTypes: string): Promise<InstalledApp> {
  const dir = mkdtempSync(join(tmpdir(), "tooldb-app-"));
  const pkg = { name: "tooldb-app", version: "1.0.0", private: true, type: "module", dependencies: { "tooldb-dht": `file:${tarball}` }, devDependencies: { "@types/node": nodeTypes } };
  writeFileSync(join(dir, "package.json"), JSON.stringify(pkg, null, 2));
  // Retries bounded: with no registry (a fresh cache under `unshare -n`) npm's default waits (10-60 s a retry, each
  // package metadata fetched) outlasted the timeout, so a machine that cannot install failed instead of skipping.
  const args = ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", "--fetch-retries=2", "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=5000"];
  const install = await runCommand("npm", args, { cwd: dir, timeoutMs: 300_000 });
  const unreachable = install.code !== 0 && UNREACHABLE.test(install.out) ? UNREACHABLE.exec(install.out)![0] : undefined;
  return { dir, install, unreachable };
}
