/**
 * Found by an outside check: any linked peer (a stranger) could call the
 * `status` server function of `serve` (about 120 KB an answer: the server
 * list and ten minutes of samples) as often as it liked, a cheap way to make
 * a server spend CPU and upstream bytes. Now one link may call it
 * STATUS_CALLS.callsPerSecond a second (burst STATUS_CALLS.burst); a call
 * over that is answered `ERR` "RATE_LIMITED: …" and counted in `refused`
 * events (at most one a second per link, each with the `count` of calls it
 * reports; `tooldb_refusals_total` adds them), and what was built is
 * answered to every caller for STATUS_CACHE_MS. Here on a node whose clock the test moves (the calls
 * come in real time, the rate and the cache see the test's clock), the same
 * function `serve` registers (addStatusFunction).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { systemClock, type Clock } from "../src/base/clock.js";
import { ErrorCode } from "../src/base/errors.js";
import { randomId } from "../src/base/random.js";
import { STATUS_CACHE_MS, STATUS_CALLS, addStatusFunction } from "../src/cli/status-function.js";
import type { NodeStatus } from "../src/cli/status.js";
import { StatusHistory } from "../src/metrics/status-history.js";
import type { RefusalEvent, ServerFunctionOptions, ToolDb } from "../src/index.js";
import { createMetrics } from "../src/metrics/index.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { type Frame, RawLink, terminateRawLinks } from "./helpers/raw-peer.js";

const TOPIC = "status-calls";
const T = 60_000;

/** A clock that stands still until the test moves it (timers run in real time). */
function frozenClock(): Clock & { advance(ms: number): void } {
  let now = Date.now();
  return { ...systemClock, now: () => now, advance: (ms) => void (now += ms) };
}

/** Sends `n` status calls at once on a raw link; resolves with their answers. */
async function callFlood(link: RawLink, n: number): Promise<Frame[]> {
  const ids = Array.from({ length: n }, () => randomId());
  const answers = ids.map((id) => link.next((f) => f.type === "functionReturn" && f.id === id, 10_000));
  for (const id of ids) link.send({ type: "function", id, to: [], function: "status", args: {} });
  return Promise.all(answers);
}

const ok = (answers: Frame[]) => answers.filter((a) => a.code === "OK").length;

/** A sample's value in a Prometheus exposition (0 when absent). */
function value(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("the status server function under a call flood", { timeout: T }, () => {
  const nodes: ToolDb[] = [];
  after(async () => {
    terminateRawLinks();
    await closeAll(...nodes);
  });

  it("a raw link calling it in a tight loop gets `burst` answers, then `callsPerSecond`; the rest RATE_LIMITED; an honest poller at the page's rate gets every one", async () => {
    const clock = frozenClock();
    const server = await startServer({ topic: TOPIC, clock });
    nodes.push(server);
    const cache = addStatusFunction(server, new Set<string>());
    const refusals: RefusalEvent[] = [];
    server.on("refused", (e) => refusals.push(e));
    const metrics = createMetrics(server);
    const attacker = await RawLink.connect(portOf(server), { topic: TOPIC, from: "127.0.0.60" });
    const page = await startClient([server], { topic: TOPIC, host: "127.0.0.61" });
    nodes.push(page);

    const first = await callFlood(attacker, 40);
    assert.equal(ok(first), STATUS_CALLS.burst, "answered at once: the burst");
    for (const a of first.filter((x) => x.code !== "OK")) {
      assert.equal(a.code, "ERR");
      assert.match(String(a.return), /^RATE_LIMITED: status may be called 1\/s \(burst 4\) per link$/);
    }
    // Reported, not logged call by call: the first refusal at once, the rest of its second together (`count`).
    const limited = () => refusals.filter((e) => e.code === ErrorCode.RATE_LIMITED);
    const counted = () => limited().reduce((n, e) => n + (e.count ?? 1), 0);
    await waitUntil(() => counted() === 40 - STATUS_CALLS.burst, 5000, "every refused call counted");
    // Two: the first at once, the other 35 when its second is over (three if the box took over a second to answer 40 calls).
    assert.ok(limited().length >= 2 && limited().length <= 3, `${limited().length} refused events for 36 refused calls`);
    assert.equal(value(await metrics.text(), "tooldb_refusals_total", 'code="RATE_LIMITED"'), 40 - STATUS_CALLS.burst, "metrics count every refused call");
    assert.equal(cache.builds, 1, "the burst's answers were built once");

    // The page polls every 2 s; the attacker goes on calling 20 times in each of those 2 s.
    let attackerOk = 0;
    for (let poll = 0; poll < 5; poll++) {
      clock.advance(2000);
      attackerOk += ok(await callFlood(attacker, 20));
      const reply = await page.doFunction("status", {}, 5000);
      assert.equal(reply.code, "OK", `poll ${poll}: ${String(reply.return)}`);
      assert.equal((reply.return as NodeStatus).topic, TOPIC);
    }
    assert.equal(attackerOk, 5 * 2 * STATUS_CALLS.callsPerSecond, "the attacker got its rate's worth, no more");
    assert.equal(cache.builds, 1 + 5, "one build per cache period, whoever asked");
    assert.ok(!attacker.isClosed, "a caller over the rate is answered, not dropped");
    await waitUntil(() => counted() === 40 - STATUS_CALLS.burst + 5 * (20 - 2 * STATUS_CALLS.callsPerSecond), 5000, "every refused call counted");
    assert.ok(limited().length <= 2 + 5 * 2, `${limited().length} refused events: at most two a flood`);
    assert.equal(value(await metrics.text(), "tooldb_refusals_total", 'code="RATE_LIMITED"'), counted());
    metrics.close();
  });

  it("a build is shared for STATUS_CACHE_MS by every caller; `since` picks the samples each gets", async () => {
    const clock = frozenClock();
    const server = await startServer({ topic: TOPIC, clock });
    nodes.push(server);
    const samples = new ManualClock(Date.now());
    const history = new StatusHistory(server, { clock: samples, intervalMs: 2000 });
    history.start();
    for (let i = 0; i < 3; i++) samples.advance(2000);
    history.stop();
    const cache = addStatusFunction(server, new Set<string>(), history);
    const a = await startClient([server], { topic: TOPIC, host: "127.0.0.62" });
    nodes.push(a);
    const status = async (db: ToolDb, since?: number) => {
      const reply = await db.doFunction("status", { since }, 5000);
      assert.equal(reply.code, "OK", String(reply.return));
      return reply.return as NodeStatus;
    };
    const all = await status(a);
    assert.equal(all.clients, 1);
    assert.equal(all.history.length, 3);
    assert.deepEqual((await status(a, all.history[1]!.t)).history, all.history.slice(2), "since: only newer samples");
    // A second client within the cache period sees the first one's build.
    const b = await startClient([server], { topic: TOPIC, host: "127.0.0.63" });
    nodes.push(b);
    assert.equal((await status(b)).clients, 1, "cached");
    assert.equal(cache.builds, 1);
    clock.advance(STATUS_CACHE_MS);
    assert.equal((await status(b)).clients, 2, "built again once the period is over");
    assert.equal(cache.builds, 2);
  });

  it("addServerFunction's rate: per link, checked, and a function without one is never refused", async () => {
    const clock = frozenClock();
    const server = await startServer({ topic: TOPIC, clock });
    nodes.push(server);
    server.addServerFunction("status", () => "free");
    const attacker = await RawLink.connect(portOf(server), { topic: TOPIC, from: "127.0.0.64" });
    assert.equal(ok(await callFlood(attacker, 30)), 30, "no rate: every call answered");
    server.addServerFunction("status", () => "rated", { callsPerSecond: 0.5, burst: 2 });
    const other = await RawLink.connect(portOf(server), { topic: TOPIC, from: "127.0.0.65" });
    assert.equal(ok(await callFlood(attacker, 5)), 2);
    assert.equal(ok(await callFlood(other, 5)), 2, "another link has a bucket of its own");
    clock.advance(2000);
    assert.equal(ok(await callFlood(attacker, 5)), 1, "0.5/s: one more after 2 s");
    const bads: unknown[] = [{ callsPerSecond: 0 }, { callsPerSecond: -1 }, { callsPerSecond: Number.NaN }, { burst: 3 }, { callsPerSecond: 1, burst: 0.5 }, { callPerSecond: 1 }, { callsPerSecond: 1, bursts: 2 }, [1, 4], []];
    for (const bad of bads) {
      assert.throws(() => server.addServerFunction("x", () => 1, bad as ServerFunctionOptions), (err: { code?: string }) => err.code === ErrorCode.INVALID_ARGUMENT, JSON.stringify(bad));
    }
    assert.throws(() => server.addServerFunction("x", () => 1, { callPerSecond: 1 } as ServerFunctionOptions), /options\.callPerSecond is not an option/);
    assert.ok(!server.functions.has("x"), "nothing registered by a refused call");
  });
});
