// A real Prometheus (Debian's package) scrapes `tooldb-dht serve` with the
// shipped scrape config, and every query of the shipped Grafana dashboard
// runs against what it scraped. Without a `prometheus` binary the test is
// skipped and says why (.ci/run installs it).
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ToolDb } from "../src/index.js";
import { DHTServer } from "../src/entries/discovery.js";
import { createDhtTestnet, type DhtTestnet } from "./helpers/dht-testnet.js";
import { FAST, waitUntil } from "./helpers/nodes.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url)); // dist/test/ -> the repository
const cli = join(ROOT, "dist", "src", "cli", "main.js");
const HOST = "127.0.0.1";

function prometheusMissing(): string | undefined {
  try {
    execFileSync("prometheus", ["--version"], { stdio: "ignore", timeout: 10_000 });
    return undefined;
  } catch {
    return "no `prometheus` binary (apt-get install prometheus): the real-Prometheus scrape test is skipped";
  }
}

const missing = prometheusMissing();
if (missing) process.stdout.write(`# ${missing}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Spawns a process and resolves the first match of `pattern` in its output (bounded). */
function startAndWaitFor(cmd: string, args: string[], pattern: RegExp, timeoutMs: number): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${cmd} printed no ${pattern} within ${timeoutMs} ms:\n${out.slice(-2000)}`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(err);
    };
    const onData = (d: Buffer) => {
      out += d;
      const match = pattern.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => fail(new Error(`${cmd} exited (${code}) before ${pattern}:\n${out.slice(-2000)}`)));
  });
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

interface QueryResult {
  status: string;
  error?: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe("a real Prometheus scrapes serve's /metrics (docs/monitoring)", { skip: missing, timeout: 120_000 }, () => {
  let testnet: DhtTestnet;
  let dir: string;
  let serve: ChildProcess | undefined;
  let prometheus: ChildProcess | undefined;
  let client: ToolDb | undefined;
  let other: DHTServer | undefined;
  let api: string;

  const query = async (expr: string): Promise<QueryResult> => {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as QueryResult;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tooldb-prometheus-"));
    testnet = await createDhtTestnet(3);
    const started = await startAndWaitFor(
      process.execPath,
      [cli, "serve", "--topic", "prom-test", "--host", HOST, "--port", "0", "--data", join(dir, "data"), "--bootstrap", testnet.bootstrap.join(","), "--metrics-host", HOST, "--metrics-port", "0"],
      /Server running on [^:]+:(\d+)[\s\S]*Metrics on http:\/\/([\d.]+):(\d+)\/metrics/,
      30_000,
    );
    serve = started.child;
    const [, serverPort, metricsHost, metricsPort] = started.match;
    // The shipped scrape config, pointed at this server and scraping every second.
    const config = readFileSync(join(ROOT, "docs", "monitoring", "prometheus.yml"), "utf8")
      .replace('targets: ["127.0.0.1:19000"]', `targets: ["${metricsHost}:${metricsPort}"]`)
      .replace("scrape_interval: 15s", "scrape_interval: 1s");
    assert.match(config, new RegExp(`${metricsHost}:${metricsPort}`));
    writeFileSync(join(dir, "prometheus.yml"), config);
    const port = await freePort();
    api = `http://${HOST}:${port}`;
    prometheus = (
      await startAndWaitFor(
        "prometheus",
        [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "tsdb")}`, `--web.listen-address=${HOST}:${port}`],
        /Server is ready to receive web requests/,
        30_000,
      )
    ).child;
    client = new ToolDb({ topic: "prom-test", peers: [{ host: HOST, port: Number(serverPort) }], ...FAST });
    await client.ready;
    await waitUntil(() => client!.network.peers.length > 0, 10_000, "client linked to serve");
    for (let i = 0; i < 10; i++) await client.putData(`prom-${i}`, i);
    // A second server joins: the two reconcile the first ten records, and serve relays the next ten to it.
    other = new DHTServer("prom-test", "127.0.0.2", 0, { bootstrap: testnet.bootstrap, discovery: { fastInterval: 100, jitter: 0, timeout: 500 }, db: FAST });
    await other.start();
    await waitUntil(() => other!.db.network.peers.some((p) => p.isServer), 15_000, "the two servers linked");
    for (let i = 10; i < 20; i++) await client.putData(`prom-${i}`, i);
  });

  after(async () => {
    await client?.close();
    await other?.stop();
    await Promise.all([stop(prometheus), stop(serve)]);
    await testnet?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("scrapes tooldb_* series: the store's keys, the puts received and relayed, the links", async () => {
    await waitUntil(async () => Number((await query('tooldb_store_keys{job="tooldb"}')).data.result[0]?.value[1] ?? 0) >= 20, 30_000, "store keys scraped");
    const up = await query('up{job="tooldb"}');
    assert.equal(up.data.result[0]?.value[1], "1");
    const puts = await query('sum(tooldb_messages_received_total{job="tooldb", type="put"})');
    assert.ok(Number(puts.data.result[0]?.value[1]) >= 20, JSON.stringify(puts));
    await waitUntil(async () => Number((await query('sum(tooldb_messages_sent_total{job="tooldb", type="put"})')).data.result[0]?.value[1] ?? 0) >= 10, 30_000, "relayed puts scraped");
    const links = await query('sum by (kind) (tooldb_links{job="tooldb"})');
    const byKind = Object.fromEntries(links.data.result.map((r) => [r.metric.kind, r.value[1]]));
    assert.deepEqual(byKind, { client: "1", server: "1" });
  });

  it("every query of the shipped Grafana dashboard is valid PromQL over the scraped series", async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, "docs", "monitoring", "grafana-dashboard.json"), "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ title: p.title, expr: t.expr })));
    assert.ok(exprs.length >= 9);
    // Rates need two samples in their window: wait until the puts series has them.
    await waitUntil(async () => (await query('sum(rate(tooldb_messages_received_total{type=~"put|crdtPut"}[1m]))')).data.result.length > 0, 30_000, "two scrapes");
    const empty: string[] = [];
    for (const { title, expr } of exprs) {
      const result = await query(expr);
      assert.equal(result.status, "success", `${title}: ${expr}: ${result.error}`);
      if (result.data.result.length === 0) empty.push(expr);
    }
    // Nothing was refused in this test, and reconciliation records are counted by the server that
    // dialed (which of the two dials depends on who found whom first); every other series exists.
    assert.deepEqual(empty.filter((e) => !/refusals|sync_records/.test(e)), []);
  });
});
