/**
 * Found by an outside check: no answer of the HTTP fronts (the status page,
 * the browser bundle, --web-dir files, /metrics, /healthz, the errors)
 * carried `X-Content-Type-Options: nosniff`, and the status page had no
 * Content-Security-Policy. Now every answer has nosniff, and the status
 * page a CSP that allows its own inline style and script by hash (checked
 * here against the page served; test/browser/status-page.test.ts checks
 * that Chromium runs the page under it without a violation). --web-dir
 * files get nosniff but no CSP: an app's pages set their own.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startWebFront, type WebFront } from "../src/cli/web.js";
import { STATUS_PAGE_CSP } from "../src/cli/status-page.js";
import type { ToolDb } from "../src/index.js";
import { createMetrics, startMetricsServer, type MetricsServer, type ToolDbMetrics } from "../src/metrics/index.js";
import { closeAll, portOf, startServer } from "./helpers/nodes.js";

const HOST = "127.0.0.1";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function fetchRaw(port: number, path: string, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Raw bytes in, the answer's head out (for targets an HTTP client will not send). */
function rawHead(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let answer = "";
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(answer.split("\r\n\r\n")[0] ?? ""));
  });
}

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

describe("HTTP fronts: nosniff on every answer, a CSP on the status page", { timeout: 60_000 }, () => {
  let dir: string;
  let web: WebFront;
  let broken: WebFront;
  let plain: WebFront;
  let node: ToolDb;
  let metrics: ToolDbMetrics;
  let metricsServer: MetricsServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "front-headers-"));
    writeFileSync(join(dir, "app.html"), "<!doctype html><script>document.title = 'app'</script>");
    writeFileSync(join(dir, "app.js"), "export const x = 1;\n");
    web = await startWebFront({ host: HOST, port: 0, topic: "headers", web: true, webDir: dir });
    broken = await startWebFront({ host: HOST, port: 0, topic: "headers", web: true, bundle: "/nonexistent/tooldb-dht.js" });
    plain = await startWebFront({ host: HOST, port: 0, topic: "headers", web: false });
    node = await startServer({ topic: "headers" });
    metrics = createMetrics(node, { defaultMetrics: false });
    metricsServer = await startMetricsServer({ host: HOST, port: 0, metrics, health: () => ({ status: "ok" }) as never });
  });

  after(async () => {
    metrics?.close();
    await Promise.all([web?.close(), broken?.close(), plain?.close(), metricsServer?.close()]);
    await closeAll(node);
    rmSync(dir, { recursive: true, force: true });
  });

  it("the status page: nosniff and a CSP with no 'unsafe-inline' whose hashes are those of its inline style and script", async () => {
    const page = await fetchRaw(web.port, "/");
    assert.equal(page.status, 200);
    assert.equal(page.headers["x-content-type-options"], "nosniff");
    const csp = String(page.headers["content-security-policy"]);
    assert.equal(csp, STATUS_PAGE_CSP);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    const directive = (name: string) => csp.split("; ").find((d) => d.startsWith(`${name} `))?.split(" ").slice(1) ?? [];
    assert.deepEqual(directive("default-src"), ["'none'"]);
    const scripts = [...page.body.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    const styles = [...page.body.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
    assert.equal(scripts.length, 1);
    assert.equal(styles.length, 1);
    assert.deepEqual(directive("script-src"), ["'self'", sha256(scripts[0]!)], "the inline script's hash, and the bundle from this origin");
    assert.deepEqual(directive("style-src"), [sha256(styles[0]!)]);
    assert.match(scripts[0]!, /from "\.\/tooldb-dht\.js"/, "the bundle is loaded from this origin");
    assert.doesNotMatch(page.body, /\sstyle="|\son[a-z]+="/, "no inline style attribute or event handler (the CSP would block them)");
    assert.deepEqual(directive("connect-src"), ["'self'"]);
  });

  it("every other answer of the web front has nosniff, and none of them a CSP (a --web-dir page sets its own)", async () => {
    const answers: Array<[string, Answer | string]> = [
      ["bundle", await fetchRaw(web.port, "/tooldb-dht.js")],
      ["web-dir page", await fetchRaw(web.port, "/app.html")],
      ["web-dir script", await fetchRaw(web.port, "/app.js")],
      ["404", await fetchRaw(web.port, "/nothing-here.html")],
      ["405", await fetchRaw(web.port, "/", "POST")],
      ["500 (bundle missing)", await fetchRaw(broken.port, "/tooldb-dht.js")],
      ["426 (no --web)", await fetchRaw(plain.port, "/")],
      ["400 (GET //[)", await rawHead(web.port, "GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")],
    ];
    const statuses = answers.map(([what, a]) => [what, typeof a === "string" ? Number(/^HTTP\/1\.1 (\d+)/.exec(a)?.[1]) : a.status]);
    assert.deepEqual(statuses, [["bundle", 200], ["web-dir page", 200], ["web-dir script", 200], ["404", 404], ["405", 405], ["500 (bundle missing)", 500], ["426 (no --web)", 426], ["400 (GET //[)", 400]]);
    for (const [what, a] of answers) {
      if (typeof a === "string") {
        assert.match(a, /^x-content-type-options: nosniff$/im, what);
        assert.doesNotMatch(a, /^content-security-policy:/im, what);
      } else {
        assert.equal(a.headers["x-content-type-options"], "nosniff", what);
        assert.equal(a.headers["content-security-policy"], undefined, what);
      }
    }
  });

  it("the metrics port's answers and the link port's 426 have nosniff", async () => {
    for (const path of ["/metrics", "/healthz", "/nothing"]) {
      const a = await fetchRaw(metricsServer.port, path);
      assert.equal(a.headers["x-content-type-options"], "nosniff", `${path} (${a.status})`);
    }
    const links = await fetchRaw(portOf(node), "/");
    assert.equal(links.status, 426);
    assert.equal(links.headers["x-content-type-options"], "nosniff");
  });

  it("the link port's refused upgrades have nosniff and plain text (ws's own answer had text/html and no nosniff)", async () => {
    const upgrade = (method: string, headers: string) =>
      rawHead(portOf(node), `${method} / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${headers}\r\n`);
    const key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    const cases: Array<[string, string, number]> = [
      ["no key", await upgrade("GET", "Sec-WebSocket-Version: 13\r\n"), 400],
      ["bad version", await upgrade("GET", `${key}Sec-WebSocket-Version: 99\r\n`), 400],
      ["POST", await upgrade("POST", `${key}Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n`), 405],
    ];
    for (const [what, head, status] of cases) {
      assert.equal(Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), status, what);
      assert.match(head, /^x-content-type-options: nosniff$/im, what);
      assert.match(head, /^content-type: text\/plain/im, what);
    }
    assert.match(cases[1]![1], /^sec-websocket-version: 13, 8$/im, "a bad version is told the versions spoken");
  });
});
