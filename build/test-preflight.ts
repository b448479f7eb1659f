/**
 * Run by `npm test` before the suite: what the tests need from the machine
 * is there, or the run stops at once with one line that names what is
 * missing and how to get it (rather than browser tests that wait for a
 * browser that never starts). A Chromium is found or unpacked (see
 * test/helpers/chromium.ts) and started once; `ip` (iproute2) is there for
 * the tests that build network namespaces.
 */
import { execFileSync } from "node:child_process";
import { ChromiumUnavailable, launchChromium, resolveChromium } from "../test/helpers/chromium.js";

function fail(line: string): never {
  process.stderr.write(`npm test: ${line}\n`);
  process.exit(1);
}

function hasIp(): boolean {
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore", timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

if (!hasIp()) fail("the LAN and restart tests build network namespaces with `ip`, which is not installed: apt-get install iproute2");

try {
  const { path, source } = await resolveChromium();
  const browser = await launchChromium();
  const version = browser.version();
  await browser.close();
  process.stdout.write(`test preflight: Chromium ${version} (${source}: ${path})\n`);
} catch (err) {
  if (err instanceof ChromiumUnavailable) fail(`browser tests need Chromium: ${err.message}`);
  throw err;
}
