/**
 * The CLI as operators use it: --version, the warning when no DHT node
 * answers (an unreachable bootstrap on loopback, a 1 s threshold), metrics
 * and /healthz on `serve`, the status line on SIGUSR1 and `status`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { run } from "./helpers/cli.js";
import { httpGet } from "./helpers/http.js";
import { withTimeout } from "./helpers/wait.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

/** Holds one connection to `port`, opens a second from the same address, and once the server closed that one reads /metrics over the first. */
async function metricsPastSecondConnection(port: number): Promise<string> {
  const first = net.connect(port, "127.0.0.1");
  first.on("error", () => undefined);
  try {
    await withTimeout(new Promise((resolve) => first.once("connect", resolve)), 5000, "the first connection");
    const second = net.connect(port, "127.0.0.1");
    second.on("error", () => undefined); // reset by the server
    await withTimeout(new Promise((resolve) => second.once("close", resolve)), 5000, "the server to close the second connection");
    let text = "";
    first.setEncoding("utf8").on("data", (d: string) => (text += d));
    const ended = new Promise((resolve) => first.once("end", resolve));
    first.write("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    await withTimeout(ended, 5000, "/metrics over the first connection");
    return text;
  } finally {
    first.destroy();
  }
}

describe("tooldb-dht CLI for operators", { timeout: 120_000 }, () => {
  let dir: string;
  before(() => void (dir = mkdtempSync(join(tmpdir(), "tooldb-cli-ops-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("--version prints the package version", async () => {
    const { code, out } = await run(["--version"]).exited;
    assert.equal(code, 0);
    assert.equal(out.trim(), pkg.version);
  });

  it("serve with no DHT node answering warns; /metrics parses, /healthz, `status` and SIGUSR1 report; SIGINT exits 0", async () => {
    let metricsPort: number | undefined;
    const seen: string[] = [];
    let step = Promise.resolve();
    const statusOut: string[] = [];
    const { exited } = run(
      // UDP port 9 on loopback: nothing answers (as offline, or with UDP blocked).
      ["serve", "--topic", "cli-ops", "--host", "127.0.0.4", "--port", "0", "--data", join(dir, "data"), "--bootstrap", "127.0.0.1:9", "--metrics-port", "0", "--dht-warn-after", "1"],
      (line, child) => {
        seen.push(line);
        const m = line.match(/^Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/);
        if (m) metricsPort = Number(m[1]);
        if (line.startsWith("warning: no DHT node has answered")) {
          step = (async () => {
            const metrics = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
            assert.equal(metrics.status, 200);
            const names = parsePrometheusTextFormat(metrics.body).map((f) => f.name);
            assert.ok(names.includes("tooldb_dht_routing_table_nodes") && names.includes("tooldb_links"), names.join(","));
            assert.match(metrics.body, /^tooldb_dht_routing_table_nodes 0$/m);
            const health = await httpGet(`http://127.0.0.1:${metricsPort}/healthz`);
            assert.equal(health.status, 200);
            assert.equal(JSON.parse(health.body).dht.nodes, 0);
            const status = await run(["status", "--metrics-port", String(metricsPort)]).exited;
            assert.equal(status.code, 0, status.out);
            statusOut.push(status.out.trim());
            child.kill("SIGUSR1");
          })();
        }
        if (line.startsWith(`ok v${pkg.version}`)) child.kill("SIGINT");
      },
    );
    const { code, out, err } = await exited;
    await step;
    assert.equal(code, 0, `exit code ${code}; stderr: ${err}`);
    assert.match(out, /warning: no DHT node has answered in 1 s: this machine may be offline, UDP may be blocked/);
    assert.match(statusOut[0]!, new RegExp(`^ok v${pkg.version.replace(/\./g, "\\.")} topic="cli-ops" up \\d+s, links 0 servers \\+ 0 clients \\(0 in handshake\\), keys 0, subscriptions 0, refusals 0, DHT: no node answered$`));
    assert.ok(seen.some((l) => l.startsWith(`ok v${pkg.version}`)), "SIGUSR1 printed the status line");
    assert.match(out, /SIGINT: left the DHT, closed sockets and store/);
  });

  it("serve's metrics port takes --max-per-ip and --exempt-ips as its links do: a second connection from one address is refused and counted", async () => {
    let scraped: Promise<{ text: string } | { err: unknown }> | undefined;
    const args = ["serve", "--topic", "cli-ops-caps", "--host", "127.0.0.1", "--port", "0", "--data", join(dir, "caps"), "--bootstrap", "127.0.0.1:9", "--metrics-port", "0"];
    // Loopback is exempt by default: name another address, so 127.0.0.1 is capped at one HTTP connection.
    const { exited } = run([...args, "--max-per-ip", "1", "--exempt-ips", "192.0.2.1"], (line, child) => {
      const m = line.match(/^Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/);
      if (!m) return;
      scraped = metricsPastSecondConnection(Number(m[1]))
        .then((text) => ({ text }), (err: unknown) => ({ err }))
        .finally(() => child.kill("SIGTERM"));
    });
    const { code, err } = await exited;
    assert.equal(code, 0, `stderr: ${err}`);
    assert.ok(scraped, "serve printed its metrics address");
    const result = await scraped;
    if ("err" in result) throw result.err;
    assert.match(result.text, /^HTTP\/1\.1 200 /);
    assert.match(result.text, /^tooldb_http_refused_total\{front="metrics",reason="per_ip"\} 1$/m);
  });

  it("serve keeps serving when the reader of its stdout, then of its stderr, goes away (serve | head -1), and still stops on SIGTERM", async () => {
    let announced: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (announced = resolve));
    const args = ["serve", "--topic", "cli-epipe", "--host", "127.0.0.1", "--port", "0", "--data", join(dir, "epipe"), "--bootstrap", "127.0.0.1:9", "--no-metrics"];
    // DEBUG: serve writes to stderr too, as it runs and as it stops.
    const { child, exited } = run(args, (line) => line.startsWith("Announcing on DHT topic") && announced(), 30_000, { env: { ...process.env, DEBUG: "tooldb:*" } });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d));
    const alive = async () => assert.equal(await Promise.race([exited.then((r) => `exited ${r.code}`), delay(1000).then(() => "alive")]), "alive", `serve died:\n${err.slice(-2000)}`);
    await ready;
    child.stdout!.destroy(); // the reader is gone
    child.kill("SIGUSR1"); // serve writes its status line to stdout: EPIPE (before: an unhandled 'error' event, exit 1)
    await alive();
    assert.doesNotMatch(err, /Unhandled 'error' event|EPIPE/);
    child.stderr!.destroy();
    child.kill("SIGUSR1");
    await alive();
    child.kill("SIGTERM");
    assert.equal((await exited).code, 0);
  });

  it("a SIGUSR1 before serve installed its status line is ignored: it never opens Node's inspector", async () => {
    const args = ["serve", "--topic", "cli-usr1", "--host", "127.0.0.1", "--port", "0", "--data", join(dir, "usr1"), "--bootstrap", "127.0.0.1:9", "--no-metrics"];
    const { code, out, err } = await run(args, (line, child) => {
      // Printed before the server starts: its status handler comes after "Announcing" (before: Node's inspector opened on 127.0.0.1:9229).
      if (line.startsWith("Data directory")) child.kill("SIGUSR1");
      if (line.startsWith("Announcing on DHT topic")) setTimeout(() => child.kill("SIGTERM"), 200);
    }).exited;
    assert.equal(code, 0, `stdout: ${out}\nstderr: ${err}`);
    assert.doesNotMatch(err, /Debugger|inspector/i);
    assert.doesNotMatch(out, /^ok v/m, "no status line before serve ran");
  });

  it("status with no server there says so and exits 1", async () => {
    const { code, err } = await run(["status", "--metrics-port", "9"]).exited;
    assert.equal(code, 1);
    assert.match(err, /no tooldb-dht server answered on http:\/\/127\.0\.0\.1:9\/healthz/);
  });
});
