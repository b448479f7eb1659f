import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { generate } from "selfsigned";
import { ROOT } from "../../build/browser-bundle.js";
import { DHTServer } from "../../src/entries/discovery.js";
import { launchChromium } from "../helpers/chromium.js";
import { createDhtTestnet, type DhtTestnet } from "../helpers/dht-testnet.js";
import { FAST, waitUntil } from "../helpers/nodes.js";

const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const TOPIC = "status-page";
const HOST = "127.0.0.7";

/** A self-signed P-256 certificate for HOST, made for this run (selfsigned, on WebCrypto: no openssl binary needed). */
async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: "commonName", value: HOST }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notAfterDate: new Date(Date.now() + 86_400_000),
    extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: HOST }] }],
  });
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  writeFileSync(cert, pems.cert);
  writeFileSync(key, pems.private);
  return { cert, key };
}

describe("tooldb-dht serve --web --tls-cert --tls-key: the status page (Chromium)", () => {
  let testnet: DhtTestnet;
  let other: DHTServer;
  let browser: Browser;
  let dir: string;
  let serve: ReturnType<typeof spawn> | undefined;
  let exited: Promise<number | null>;
  let pageUrl: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tooldb-status-"));
    testnet = await createDhtTestnet(3);
    other = new DHTServer(TOPIC, "127.0.0.2", 0, { bootstrap: testnet.bootstrap, discovery: { fastInterval: 100, jitter: 0, timeout: 500 }, db: FAST });
    await other.start();
    const { cert, key } = await selfSignedCert(dir);
    const args = ["serve", "--topic", TOPIC, "--host", HOST, "--port", "0", "--web", "--tls-cert", cert, "--tls-key", key, "--data", join(dir, "data"), "--bootstrap", testnet.bootstrap.join(",")];
    const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    serve = child;
    exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    pageUrl = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d;
        const m = /Status page: (https:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.stderr!.on("data", (d: Buffer) => (out += d));
      child.on("exit", () => reject(new Error(`serve exited early:\n${out}`)));
    });
    browser = await launchChromium(["--ignore-certificate-errors"]);
  });

  after(async () => {
    await browser?.close();
    serve?.kill("SIGINT");
    await exited;
    await other?.stop();
    await testnet?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the page; it records every Content-Security-Policy violation in `window.cspViolations`. */
  async function openStatus(): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.addInitScript(() => {
      const w = window as unknown as { cspViolations: string[] };
      w.cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const response = await page.goto(pageUrl);
    // Served under its CSP (checked against the page in test/http-front-headers.test.ts), and nosniff.
    assert.match(response?.headers()["content-security-policy"] ?? "", /^default-src 'none'; script-src 'self' 'sha256-/);
    assert.equal(response?.headers()["x-content-type-options"], "nosniff");
    return page;
  }

  const cspViolations = (page: Page) => page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);

  it("renders this server (wss URL in its record), the servers it knows with link state, clients, and a live key across tabs", async () => {
    const [a, b] = [await openStatus(), await openStatus()];
    try {
      // The DHT-found server shows up as linked; the two tabs count as clients.
      await a.waitForFunction(
        () => [...document.querySelectorAll("#servers td")].some((td) => td.textContent === "linked") && Number(document.getElementById("clients")!.textContent) >= 2,
        undefined,
        { timeout: 15_000, polling: 50 },
      );
      const selfUrl = await a.textContent("#self-url");
      assert.match(selfUrl ?? "", /^wss:\/\/127\.0\.0\.7:\d+$/);
      assert.equal(await a.evaluate(() => (window as any).statusDb.network.peers[0].record.url), selfUrl);
      const rows = await a.$$eval("#servers tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
      assert.ok(rows.some((r) => r[1] === `ws://127.0.0.2:${other.port}` && /dht/.test(r[2] ?? "") && r[3] === "linked"), JSON.stringify(rows));
      assert.match((await a.textContent("#link")) ?? "", /^linked/);

      await a.fill("#live-input", "hello from tab A");
      await a.click("button");
      await b.waitForFunction(() => document.getElementById("live-value")!.textContent === "hello from tab A", undefined, { timeout: 10_000, polling: 20 });
      // The writing tab shows its own write too (key listeners hear other nodes' writes only).
      await a.waitForFunction(() => document.getElementById("live-value")!.textContent === "hello from tab A", undefined, { timeout: 10_000, polling: 20 });
      await waitUntil(async () => (await other.db.getData("status-page-live")) === "hello from tab A", 5000, "live key across the mesh");
      assert.deepEqual([await cspViolations(a), await cspViolations(b)], [[], []], "the page runs under its CSP without a violation");
      await a.screenshot({ path: join(ROOT, ".tmp", "status-page.png"), fullPage: true });
    } catch (err) {
      mkdirSync(join(ROOT, ".tmp"), { recursive: true });
      const shot = join(ROOT, ".tmp", "status-page-failure.png");
      await a.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
      throw new Error(`${String(err)}\nscreenshot: ${shot}`);
    }
  });

  it("draws the server's last minutes as live charts, and they move while puts flow", { timeout: 60_000 }, async () => {
    const page = await openStatus();
    try {
      const points = () => page.$eval('svg[data-chart="puts"]', (svg) => Number((svg as SVGElement).dataset.points ?? 0));
      await page.waitForFunction(() => Number(document.querySelector<SVGElement>('svg[data-chart="puts"]')?.dataset.points ?? 0) >= 1, undefined, { timeout: 15_000, polling: 100 });
      const quiet = await page.locator('svg[data-chart="puts"]').screenshot();
      // Puts through the linked server: the page's server receives each one relayed.
      const start = await points();
      let n = 0;
      const writer = setInterval(() => void other.db.putData(`chart-${n++}`, n).catch(() => undefined), 20);
      try {
        await page.waitForFunction(
          (from) => {
            const charts = (window as any).statusCharts;
            return charts.t.length >= from + 2 && Math.max(...charts.puts.in) > 0;
          },
          start,
          { timeout: 20_000, polling: 100 },
        );
      } finally {
        clearInterval(writer);
      }
      const busy = await page.locator('svg[data-chart="puts"]').screenshot();
      assert.notDeepEqual(busy, quiet, "the puts chart looks the same after puts flowed");
      // Every chart drew: a line per series, with points spread over its width.
      const charts = await page.$$eval("svg[data-chart]", (svgs) =>
        svgs.map((svg) => ({
          chart: (svg as SVGElement).dataset.chart,
          lines: [...svg.querySelectorAll("polyline")].map((l) => ({ series: (l as SVGElement).dataset.series, width: l.getBBox().width })),
        })),
      );
      assert.deepEqual(charts.map((c) => c.chart), ["puts", "links", "refusals", "sync", "loop"]);
      for (const c of charts) if (c.chart !== "refusals") assert.ok(c.lines.length > 0 && c.lines.every((l) => l.width > 0), JSON.stringify(c));
      const links = charts.find((c) => c.chart === "links")!.lines.map((l) => l.series);
      assert.ok(links.includes("server/websocket") && links.some((s) => s?.startsWith("client/")), JSON.stringify(links));
      const inRate = await page.evaluate(() => Math.max(...(window as any).statusCharts.puts.in));
      assert.ok(inRate > 1, `puts in per second peaked at ${inRate}`);
      assert.deepEqual(await cspViolations(page), [], "the charts draw under the page's CSP without a violation");
      mkdirSync(join(ROOT, ".tmp"), { recursive: true });
      await page.screenshot({ path: join(ROOT, ".tmp", "status-page-charts.png"), fullPage: true });
    } finally {
      await page.context().close();
    }
  });

  it("serve stops on SIGINT and exits 0 (HTTPS front closed too)", async () => {
    serve!.kill("SIGINT");
    assert.equal(await exited, 0);
    serve = undefined;
  });
});
