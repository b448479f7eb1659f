/**
 * README.md's "Browsers" snippet runs as written (no test ran it: found by a
 * docs audit): the page imports the ESM bundle, dials
 * wss://db1.example.com:443 and puts once linked. Here db1.example.com is
 * 127.0.0.2 (Chromium's host resolver rules), with a self-signed TLS
 * certificate, and the put must arrive on that server.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { generate } from "selfsigned";
import { ROOT } from "../../build/browser-bundle.js";
import { ToolDb } from "../../src/index.js";
import { launchChromium, servePages, type PageServer } from "../helpers/chromium.js";

const HOST = "127.0.0.2";

describe("README.md's browser snippet runs as written (Chromium, wss:// on 443)", { timeout: 90_000 }, () => {
  const snippet = [...readFileSync(join(ROOT, "README.md"), "utf8").matchAll(/```html\n([\s\S]*?)```/g)].map((m) => m[1]!);
  let https: Server;
  let server: ToolDb;
  let pages: PageServer;
  let browser: Browser;

  before(async () => {
    const pems = await generate([{ name: "commonName", value: "db1.example.com" }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
      notAfterDate: new Date(Date.now() + 86_400_000),
      extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: "db1.example.com" }] }],
    });
    https = createServer({ cert: pems.cert, key: pems.private });
    // Port 443 as written: the suite runs as root in a network namespace of its own.
    await new Promise<void>((resolve, reject) => https.once("error", reject).listen(443, HOST, () => resolve()));
    server = new ToolDb({ server: true, host: HOST, port: 443, topic: "my-app-v1", httpServer: https });
    await server.ready;
    pages = await servePages({ "/": (_req, res) => void res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(snippet[0]) });
    browser = await launchChromium([`--host-resolver-rules=MAP db1.example.com ${HOST}`, "--ignore-certificate-errors"]);
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
    await server?.close();
    await new Promise((resolve) => (https?.listening ? https.close(resolve) : resolve(undefined)));
  });

  it("is the README's one html block, and it puts on db1.example.com:443 once connected", async () => {
    assert.equal(snippet.length, 1);
    assert.match(snippet[0]!, /peers: \[\{ host: "db1\.example\.com", port: 443 \}\], ssl: true/);
    const arrived = new Promise<unknown>((resolve) => server.on("put", (message) => message.data.k === "greeting" && resolve(message.data.v)));
    const page = await (await browser.newContext()).newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(pages.url);
    assert.equal(await arrived, "hello from a page");
    assert.equal(await server.getData("greeting"), "hello from a page");
    assert.deepEqual(errors, []);
  });
});
