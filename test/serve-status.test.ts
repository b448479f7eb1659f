/**
 * `tooldb-dht serve`'s `status` server function, from outside, on a private
 * DHT on loopback. Found by an outside check:
 *
 * - any linked peer could call `status` (about 120 KB an answer) in a tight
 *   loop and the server built and sent every answer: now a link is answered
 *   at STATUS_CALLS' rate and refused (`ERR` "RATE_LIMITED: …") past it,
 *   while an honest poller at the status page's rate gets every answer;
 * - the status listed the server's own address as "found" on the DHT (a
 *   lookup returns this server's own announce too): now left out, and not
 *   printed as "DHT peer found" either.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type DHT from "bittorrent-dht";
import { randomId } from "../src/base/random.js";
import { STATUS_CALLS } from "../src/cli/status-function.js";
import type { NodeStatus } from "../src/cli/status.js";
import { topicInfoHash } from "../src/entries/discovery.js";
import { ToolDb } from "../src/index.js";
import { run } from "./helpers/cli.js";
import { createDhtTestnet, type DhtTestnet } from "./helpers/dht-testnet.js";
import { waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";

const TOPIC = "serve-status";
/** The status page asks every 2 s. */
const PAGE_POLL_MS = 2000;
/** An address announced on the topic by a plain DHT node (nothing listens there). */
const STRANGER = { host: "127.0.0.3", port: 4321 };

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

  it("lists no address of the server itself as found on the DHT, nor prints it as a peer found", async () => {
    const infoHash = topicInfoHash(TOPIC);
    // serve's announce is on the DHT once a lookup from elsewhere finds it...
    const looker = await testnet.createNode("127.0.0.4");
    await waitUntil(
      () =>
        new Promise<boolean>((resolve) => {
          let seen = false;
          const onPeer = (peer: { host: string; port: number }) => (seen ||= peer.port === port);
          looker.on("peer", onPeer);
          looker.lookup(infoHash, () => {
            looker.off("peer", onPeer);
            resolve(seen);
          });
        }),
      20_000,
      "serve's announce on the DHT",
    );
    // ...then a stranger announces: the lookup that finds it also returns serve's own announce.
    const stranger: DHT = await testnet.createNode(STRANGER.host);
    await new Promise<void>((resolve) => stranger.announce(infoHash, STRANGER.port, () => resolve()));
    await waitUntil(() => lines.includes(`DHT peer found: ${STRANGER.host}:${STRANGER.port}`), 30_000, "serve finding the stranger");
    // Asked at the page's pace (an answer may be a second old: the status is cached that long).
    let s = await status();
    const describe = (x: NodeStatus) => x.servers.map((e) => `${e.id} ${e.url ?? ""} ${e.state}`);
    for (const deadline = Date.now() + 10_000; !describe(s).some((l) => l.includes(`${STRANGER.host}:${STRANGER.port}`)); ) {
      assert.ok(Date.now() < deadline, `the stranger is not listed: ${describe(s).join("\n")}`);
      await new Promise((r) => setTimeout(r, PAGE_POLL_MS));
      s = await status();
    }
    const listed = describe(s);
    for (const own of [`127.0.0.1:${port}`, s.self.address]) assert.ok(!listed.some((l) => l.includes(own)), `the server lists itself (${own}):\n${listed.join("\n")}`);
    assert.ok(!lines.some((l) => l === `DHT peer found: 127.0.0.1:${port}`), "serve printed its own address as a peer found");
  });
});
