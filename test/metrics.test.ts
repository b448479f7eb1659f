/**
 * Metrics and health: a real server with createMetrics and the HTTP
 * endpoint, scraped over HTTP, the exposition parsed twice (a strict line
 * grammar of the text format, and parse-prometheus-text-format), and the
 * figures compared with what the test did. Also: the core's import graph
 * never reaches prom-client.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Gauge } from "prom-client";
import type { ToolDb } from "../src/node/tooldb.js";
import { HealthMonitor, createMetrics, startMetricsServer, statusLine, type MetricsServer, type ToolDbMetrics } from "../src/metrics/index.js";
import { closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { codeBlocks, runExample } from "./helpers/doc-examples.js";
import { httpGet } from "./helpers/http.js";
import { waitFor } from "./helpers/wait.js";
import { signedRecords } from "./helpers/signed-records.js";
import { verifyWithAddress } from "../src/crypto/ecdsa.js";
import { threadsWanted } from "../src/crypto/verify-pool.js";
import { availableParallelism } from "node:os";

const T = 5000;

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const LABELS = `\\{(?:[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE}(?:,[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE})*,?)?\\}`;
const VALUE = "(?:[-+]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN)";
const SAMPLE = new RegExp(`^(${NAME})(${LABELS})? (${VALUE})(?: -?[0-9]+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/**
 * The Prometheus text format (0.0.4), strictly: every line is a HELP, a
 * TYPE (once per family, before its samples) or a sample of a declared
 * family; histogram samples end in _bucket/_sum/_count. Returns samples.
 */
function strictParse(text: string): Array<{ name: string; labels: string; value: number }> {
  assert.ok(text.endsWith("\n"), "exposition ends with a newline");
  const types = new Map<string, string>();
  const samples: Array<{ name: string; labels: string; value: number }> = [];
  for (const [i, line] of text.slice(0, -1).split("\n").entries()) {
    if (line === "") continue;
    let m: RegExpMatchArray | null;
    if ((m = line.match(HELP))) continue;
    if ((m = line.match(TYPE))) {
      assert.ok(!types.has(m[1]!), `line ${i + 1}: TYPE ${m[1]} declared twice`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = line.match(SAMPLE);
    assert.ok(m, `line ${i + 1} is not valid text format: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const family = [name, name.replace(/_(bucket|sum|count)$/, "")].find((n) => types.has(n));
    assert.ok(family, `line ${i + 1}: sample ${name} of no declared family`);
    if (types.get(family) === "histogram" && family !== name) assert.match(name, /_(bucket|sum|count)$/);
    samples.push({ name, labels: m[2] ?? "", value: Number(m[3]!.replace("Inf", "Infinity")) });
  }
  return samples;
}

function value(samples: ReturnType<typeof strictParse>, name: string, labels = ""): number | undefined {
  return samples.find((s) => s.name === name && s.labels === labels)?.value;
}

describe("metrics and health", () => {
  let server: ToolDb;
  let client: ToolDb;
  let metrics: ToolDbMetrics;
  let http: MetricsServer;
  let health: HealthMonitor;
  let base: string;

  before(async () => {
    server = await startServer({ topic: "metrics" });
    metrics = createMetrics(server);
    health = new HealthMonitor(server, { version: "test" });
    http = await startMetricsServer({ host: "127.0.0.1", port: 0, metrics, health: () => health.report() });
    base = `http://127.0.0.1:${http.port}`;
    client = await startClient([server], { topic: "metrics" });
  });

  after(async () => {
    terminateRawLinks();
    metrics.close();
    health.close();
    await http.close();
    await closeAll(client, server);
  });

  it("a scrape of /metrics parses (strict grammar and parse-prometheus-text-format) and counts what happened", async () => {
    await client.putData("a", 1);
    await client.putData("b", 2);
    await waitUntil(async () => (await server.records.get("a")) !== undefined && (await server.records.get("b")) !== undefined, T, "puts on the server");
    await client.subscribeData("a");
    // The server answers a subscription with the key's current value.
    await waitUntil(() => server.network.traffic.sent.get("put") === 1, T, "the subscription answered");
    const raw = await RawLink.connect(portOf(server), { topic: "metrics" });
    const refused = waitFor(server, "refused", T);
    raw.send("not json");
    await refused;
    await raw.waitClose();

    const res = await httpGet(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    const samples = strictParse(res.body);
    const families = parsePrometheusTextFormat(res.body);
    const names = new Set(families.map((f) => f.name));
    for (const name of ["tooldb_links", "tooldb_messages_received_total", "tooldb_refusals_total", "tooldb_verify_seconds", "tooldb_store_keys", "nodejs_eventloop_lag_seconds", "tooldb_sync_keys_total", "tooldb_sync_runs_total", "tooldb_sync_records_total", "tooldb_links_unverified"]) {
      assert.ok(names.has(name), `family ${name} missing`);
    }
    assert.equal(value(samples, "tooldb_links", '{kind="client",transport="websocket",direction="in"}'), 1, "the client (the raw link was dropped for its malformed frame)");
    assert.equal(value(samples, "tooldb_messages_received_total", '{type="put"}'), 2);
    assert.equal(value(samples, "tooldb_messages_received_total", '{type="subscribe"}'), 1);
    assert.equal(value(samples, "tooldb_refusals_total", '{code="BAD_MESSAGE"}'), 1);
    assert.equal(value(samples, "tooldb_verify_seconds_count", '{result="Verified"}'), 2);
    assert.equal(value(samples, "tooldb_store_keys"), 2);
    assert.equal(value(samples, "tooldb_subscriptions"), 1);
    assert.equal(value(samples, "tooldb_messages_sent_total", '{type="put"}'), 1, "the current value of the subscribed key");
    const histogram = families.find((f) => f.name === "tooldb_verify_seconds");
    assert.equal(histogram?.type, "HISTOGRAM");
  });

  it("counts the signature checks its verification threads and its main thread did, and says how many threads there are", async () => {
    const scrape = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec((await httpGet(`${base}/metrics`)).body)?.[1]);
    const checks = async () => (await scrape("tooldb_verify_thread_checks_total")) + (await scrape("tooldb_verify_main_checks_total"));
    const before = await checks();
    const records = await signedRecords(100, "metrics-threads/", Date.now() - 10_000);
    assert.ok((await Promise.all(records.map((r) => verifyWithAddress(r.h, r.s, r.a)))).every(Boolean));
    const threads = Math.min(threadsWanted(process.env.TOOLDB_VERIFY_THREADS, availableParallelism()), 16);
    assert.equal(await scrape("tooldb_verify_threads"), threads);
    assert.equal((await checks()) - before, threads > 0 ? 100 : 0, "a burst of 100 checks in one turn goes to the threads (the main thread helping them)");
  });

  it("a NaN sample is written as the text format spells it (prom-client writes \"Nan\"), and scrapes back to back parse strictly", async () => {
    const gauge = new Gauge({ name: "tooldb_test_not_a_number", help: "NaN on purpose", registers: [metrics.registry] });
    gauge.set(Number.NaN);
    try {
      const texts = await Promise.all([1, 2, 3].map(async () => (await httpGet(`${base}/metrics`)).body));
      assert.match(texts[0]!, /^tooldb_test_not_a_number NaN$/m);
      for (const text of texts) {
        assert.doesNotMatch(text, / Nan$/m);
        assert.ok(Number.isNaN(value(strictParse(text), "tooldb_test_not_a_number")));
      }
    } finally {
      metrics.registry.removeSingleMetric("tooldb_test_not_a_number");
    }
  });

  it("/healthz answers 200 with the report while serving; unknown paths 404", async () => {
    const res = await httpGet(`${base}/healthz`);
    assert.equal(res.status, 200);
    const report = JSON.parse(res.body) as ReturnType<HealthMonitor["report"]>;
    assert.equal(report.status, "ok");
    assert.equal(report.links.clients, server.network.peers.filter((p) => !p.isServer).length);
    assert.equal(report.storeKeys, server.quota.size);
    assert.match(statusLine(report), /^ok vtest topic="metrics" up \d+s, links 0 servers \+ \d clients/);
    assert.equal((await httpGet(`${base}/nope`)).status, 404);
  });

  it("/healthz answers 503 once the node is closed", async () => {
    const other = await startServer({ topic: "metrics" });
    const monitor = new HealthMonitor(other, { version: "test" });
    const srv = await startMetricsServer({ host: "127.0.0.1", port: 0, health: () => monitor.report() });
    try {
      await other.close();
      const res = await httpGet(`http://127.0.0.1:${srv.port}/healthz`);
      assert.equal(res.status, 503);
      assert.equal(JSON.parse(res.body).status, "closed");
    } finally {
      monitor.close();
      await srv.close();
    }
  });

  it("the example in docs/operating-monitoring.md runs as written", async () => {
    const [example] = codeBlocks("docs/operating-monitoring.md");
    const out = await runExample("operating", example!);
    assert.match(out, /^tooldb_store_keys 1$/m);
    assert.match(out, /^ok vexample topic="ops-example" up \d+s$/m);
  });

  it("the core, the Node entry and the browser entry never import prom-client (metrics are opt-in)", () => {
    const dist = resolve(dirname(fileURLToPath(import.meta.url)), "../src");
    for (const entry of ["index.js", "browser.js", "entries/core.js", "network/index.js"]) {
      const seen = new Set<string>();
      const walk = (file: string) => {
        if (seen.has(file)) return;
        seen.add(file);
        const code = readFileSync(file, "utf8");
        assert.doesNotMatch(code, /from "prom-client"/, `${file} imports prom-client`);
        for (const m of code.matchAll(/(?:from|import)\s*"(\.[^"]+)"/g)) walk(resolve(dirname(file), m[1]!));
      };
      walk(resolve(dist, entry));
      assert.ok(![...seen].some((f) => f.includes("/metrics/")), `${entry} reaches src/metrics`);
    }
  });
});
