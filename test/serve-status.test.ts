/**
 * `tooldb-dht serve`'s `status` server function, from outside, on a private
 * DHT on loopback. Found by an outside check:
 *
 * - any linked peer could call `status` (about 120 KB an answer) in a tight
 *   loop and the server built and sent every answer: now a link is answered
 *   at STATUS_CALLS' rate and refused (`ERR` "RATE_LIMITED: …") past it,
 *   while an honest poller at the status page's rate gets every answer.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { randomId } from "../src/base/random.js";
import { STATUS_CALLS } from "../src/cli/status-function.js";
import type { NodeStatus } from "../src/cli/status.js";
import { ToolDb } from "../src/index.js";
import { run } from "./helpers/cli.js";
import { createDhtTestnet, type DhtTestnet } from "./helpers/dht-testnet.js";
import { waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";

const TOPIC = "serve-status";
/** The status page asks every 2 s. */
const PAGE_POLL_MS = 2000;

describe("serve's status server function, from outside", { timeout: 120_000 }, () => {
  let testnet: DhtTestnet;
  const dir = mkdtempSync(join(tmpdir(), "serve-status-"));
  let server: ReturnType<typeof run>;
  let port = 0;
  const lines: string[] = [];
  let client: ToolDb | undefined;

  before(async () => {
    testnet = await createDhtTestnet(3);
    server = run(["serve", "--topic", TOPIC, "--host", "127.0.0.1", "--port", "0", "--data", join(dir, "d"), "--bootstrap", testnet.bootstrap.join(","), "--no-metrics"], (line) => {
      lines.push(line);
      const m = /^Server running on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) port = Number(m[1]);
    }, 110_000);
    await waitUntil(() => port > 0, 20_000, "serve listening");
    client = new ToolDb({ topic: TOPIC, host: "127.0.0.40", peers: [{ host: "127.0.0.1", port }], wait: 20, maxReconnectDelay: 200 });
    await client.ready;
    await waitUntil(() => client!.network.peers.length > 0, 10_000, "the honest client's link");
  });

  after(async () => {
    terminateRawLinks();
    await client?.close();
    server?.child.kill("SIGTERM");
    await server?.exited;
    await testnet?.destroy();
    for (const suffix of ["", ".keys", ".sync", ".peers"]) rmSync(join(dir, `d${suffix}`), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const status = async (since?: number) => {
    const reply = await client!.doFunction("status", { since }, 10_000);
    assert.equal(reply.code, "OK", String(reply.return));
    return reply.return as NodeStatus;
  };

  it("a raw link calling status in a tight loop is answered within the rate and refused past it; an honest poller at the page's rate gets every answer", async () => {
    const attacker = await RawLink.connect(port, { topic: TOPIC, from: "127.0.0.66" });
    let polling = true;
    const polls: Promise<NodeStatus[]> = (async () => {
      const got: NodeStatus[] = [];
      let newest: number | undefined;
      for (let i = 0; i < 4; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, PAGE_POLL_MS));
        const s = await status(newest);
        newest = s.history.at(-1)?.t ?? newest;
        got.push(s);
      }
      polling = false;
      return got;
    })();
    const started = performance.now();
    let calls = 0;
    let answered = 0;
    const refused: string[] = [];
    // One call after the other, as fast as the answers come, for as long as the page polls.
    while (polling) {
      const id = randomId();
      const reply = attacker.next((f) => f.type === "functionReturn" && f.id === id, 10_000);
      attacker.send({ type: "function", id, to: [], function: "status", args: {} });
      const answer = await reply;
      calls++;
      if (answer.code === "OK") answered++;
      else refused.push(`${String(answer.code)} ${String(answer.return)}`);
    }
    const seconds = (performance.now() - started) / 1000;
    const bound = STATUS_CALLS.burst + Math.ceil(seconds * STATUS_CALLS.callsPerSecond);
    const honest = await polls;
    process.stdout.write(`# ${calls} calls in ${seconds.toFixed(1)} s: ${answered} answered (bound ${bound}), ${refused.length} refused; the poller got ${honest.length}\n`);
    assert.ok(calls >= 50, `only ${calls} calls made`);
    assert.ok(answered >= STATUS_CALLS.burst && answered <= bound, `${answered} of ${calls} calls answered in ${seconds.toFixed(1)} s, bound ${bound}`);
    assert.equal(refused.length, calls - answered);
    for (const r of refused) assert.match(r, /^ERR RATE_LIMITED: status may be called /);
    assert.equal(honest.length, 4, "every poll of the page answered");
    assert.ok(!attacker.isClosed, "the server kept the attacker's link (answered, not crashed)");
    await status();
  });

});
