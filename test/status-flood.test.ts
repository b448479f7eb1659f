/**
 * Found by an outside test (attack/a2-flood-server-costs.mjs): `serve` keeps
 * every address it was ever told of on the DHT in a Set (`dhtFound`,
 * src/cli/serve.ts) that nothing bounds, and its `status` server function,
 * which any linked peer may call (with or without --web), lists them all.
 * Under an announce flood the list passes the candidate pool's bound (4,096)
 * within seconds and a frame soon after (the status page then gets an
 * error), and each call walks and serialises all of it on the event loop.
 * Now the set is bounded, `status` lists the newest MAX_FOUND_LISTED of
 * them, and serve prints at most LINES_PER_MINUTE such lines a minute.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type DHT from "bittorrent-dht";
import { startBootstrapNode, topicInfoHash, type BootstrapNode } from "../src/entries/discovery.js";
import { ToolDb } from "../src/index.js";
import { run } from "./helpers/cli.js";
import { LINES_PER_MINUTE } from "../src/cli/peer-report.js";
import { MAX_FOUND_LISTED, type NodeStatus } from "../src/cli/status.js";
import { destroyDht, startDhtAt } from "./helpers/dht-events.js";
import { waitUntil } from "./helpers/nodes.js";

const TOPIC = "status-flood";
const ATTACKERS = ["127.0.0.66", "127.0.0.67", "127.0.0.68", "127.0.0.69"];
/** The candidate pool and the DHT peer table each keep 4,096 addresses. */
const BOUND = 4096;

describe("serve's status list under an announce flood", { timeout: 150_000 }, () => {
  let boot: BootstrapNode;
  const attackers: DHT[] = [];
  const dir = mkdtempSync(join(tmpdir(), "status-flood-"));
  let server: ReturnType<typeof run>;
  let port = 0;
  let found = 0;
  let client: ToolDb | undefined;

  before(async () => {
    boot = await startBootstrapNode({ host: "127.0.0.1", port: 0, bootstrap: false, timeout: 500 });
    const bootstrap = `127.0.0.1:${boot.address().port}`;
    server = run(["serve", "--topic", TOPIC, "--host", "127.0.0.1", "--port", "0", "--data", join(dir, "d"), "--bootstrap", bootstrap, "--no-metrics"], (line) => {
      const m = /^Server running on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) port = Number(m[1]);
      if (line.startsWith("DHT peer found")) found++;
    }, 140_000);
    await waitUntil(() => port > 0, 20_000, "serve listening");
    for (const host of ATTACKERS) attackers.push(await startDhtAt([bootstrap], host));
  });

  after(async () => {
    await client?.close();
    server?.child.kill("SIGTERM");
    await server?.exited;
    await Promise.all(attackers.map(destroyDht));
    await boot?.close();
    for (const suffix of ["", ".keys", ".sync", ".peers"]) rmSync(join(dir, `d${suffix}`), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers a linked peer's status with a bounded list, and prints a bounded number of lines, while strangers flood the topic", async () => {
    const infoHash = topicInfoHash(TOPIC);
    const announce = (dht: DHT, p: number) => new Promise<void>((resolve) => dht.announce(infoHash, p, () => resolve()));
    client = new ToolDb({ topic: TOPIC, host: "127.0.0.40", peers: [{ host: "127.0.0.1", port }], wait: 20, maxReconnectDelay: 200 });
    await client.ready;
    await waitUntil(() => client!.network.peers.length > 0, 10_000, "a link to the server");
    const status = async () => {
      const reply = await client!.doFunction("status", {}, 20_000);
      assert.equal(reply.code, "OK", String(reply.return));
      return reply.return as NodeStatus;
    };
    // Closed ports, fresh ones every round, until the server was told of well over the bound
    // (before: every one listed, a megabyte an answer, and printed, 93,000 lines a minute).
    let next = 2;
    let last = await status();
    while (last.foundNotListed < BOUND / 4) {
      await Promise.all(attackers.flatMap((a) => Array.from({ length: 100 }, (_, i) => announce(a, next + i))));
      next += 100;
      assert.ok(next < 65_000, `the server was told of only ${last.foundNotListed + MAX_FOUND_LISTED} addresses`);
      if (next % 1000 === 2) last = await status();
    }
    last = await status();
    const foundListed = last.servers.filter((s) => s.state === "found").length;
    assert.ok(foundListed <= MAX_FOUND_LISTED, `status lists ${foundListed} DHT-only addresses`);
    assert.ok(JSON.stringify(last).length < 256 * 1024, `status answer of ${JSON.stringify(last).length} chars`);
    assert.ok(found <= LINES_PER_MINUTE * 3, `serve printed ${found} "DHT peer found" lines`);
  });
});
