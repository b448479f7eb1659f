import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { ROOT } from "../../build/browser-bundle.js";
import { launchChromium, servePages, type PageServer } from "../helpers/chromium.js";
import { createDhtTestnet, type DhtTestnet } from "../helpers/dht-testnet.js";
import { codeBlocks } from "../helpers/doc-examples.js";

/** Starts a docs example as a long-running Node process; resolves once it printed `ready`. */
function startExample(name: string, code: string, env: Record<string, string>, ready: RegExp): Promise<{ stop(): Promise<number | null> }> {
  const dir = join(ROOT, ".tmp", "examples");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, code);
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${name} not ready:\n${out}`)), 20_000);
    child.stdout.on("data", (d) => {
      out += d;
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ stop: () => (child.kill("SIGTERM"), exited) });
      }
    });
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", () => reject(new Error(`${name} exited:\n${out}`)));
  });
}

describe("docs/browsers.md runs as written (Node servers on a private DHT, the page in Chromium)", () => {
  const serverCode = codeBlocks("docs/browsers.md")[0]!;
  const pageHtml = [...readFileSync(join(ROOT, "docs/browsers.md"), "utf8").matchAll(/```html\n([\s\S]*?)```/g)][0]![1]!;
  let testnet: DhtTestnet;
  let pages: PageServer;
  let browser: Browser;
  const servers: Array<{ stop(): Promise<number | null> }> = [];

  before(async () => {
    testnet = await createDhtTestnet(3);
    for (const host of ["127.0.0.2", "127.0.0.3"]) {
      servers.push(await startExample(`browsers-server-${host}`, serverCode, { DHT_BOOTSTRAP: testnet.bootstrap[0]!, HOST: host }, /serving my-app/));
    }
    pages = await servePages({ "/": (_req, res) => void res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(pageHtml) });
    // The guide's host names stand for the two servers on loopback.
    browser = await launchChromium(["--host-resolver-rules=MAP discovered-server-1.com 127.0.0.2, MAP discovered-server-2.com 127.0.0.3"]);
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
    for (const s of servers) await s.stop();
    await testnet?.destroy();
  });

  it("the guide's browser sample, imports changed, links to both DHT servers and puts through them", async () => {
    const page = await (await browser.newContext()).newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(pages.url);
    await page.waitForFunction(() => document.getElementById("log")!.textContent!.includes("hello is"), undefined, { timeout: 15_000, polling: 20 });
    assert.equal(await page.textContent("#log"), "connected\nhello is from the browser\n");
    assert.deepEqual(errors, []);
  });

  it("the server example exits 0 on SIGTERM", async () => {
    const server = servers.pop()!;
    assert.equal(await server.stop(), 0);
  });
});
