/**
 * `tooldb-dht peers` on a topic that strangers flooded (an outside check:
 * with 6,000 announces it heard 100 addresses, missed the real server and
 * would have dialed every address at once). Ten attacker hosts in ten /24
 * networks announce 40 closed ports each (our DHT nodes keep 32 each); the
 * command keeps looking up for its whole wait, prints at most 100
 * addresses, verifies at most 256 taken in turn from each network, and
 * finds the real server among them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type DHT from "bittorrent-dht";
import { startBootstrapNode, topicInfoHash, type BootstrapNode } from "../src/entries/discovery.js";
import { run } from "./helpers/cli.js";
import { destroyDht, startDhtAt } from "./helpers/dht-events.js";
import { announcePorts } from "./helpers/bogus-servers.js";

const TOPIC = "peers-flood";
const ATTACKERS = Array.from({ length: 10 }, (_, i) => `127.0.${10 + i}.1`);

describe("tooldb-dht peers on a flooded topic", { timeout: 120_000 }, () => {
  const nodes: BootstrapNode[] = [];
  const attackers: DHT[] = [];
  const dir = mkdtempSync(join(tmpdir(), "peers-flood-"));
  let bootstrap = "";
  let server: ReturnType<typeof run> | undefined;

  before(async () => {
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0, bootstrap: false, timeout: 500 });
    nodes.push(seed);
    bootstrap = `127.0.0.1:${seed.address().port}`;
    for (let i = 0; i < 2; i++) nodes.push(await startBootstrapNode({ host: "127.0.0.1", port: 0, bootstrap: [bootstrap], timeout: 500 }));
    let announced: () => void;
    const ready = new Promise<void>((resolve) => (announced = resolve));
    server = run(["serve", "--topic", TOPIC, "--host", "127.0.0.3", "--port", "0", "--data", join(dir, "d"), "--bootstrap", bootstrap, "--no-metrics"], (line) => {
      if (line.startsWith("Announcing on DHT topic")) announced();
    }, 100_000);
    await ready;
    const infoHash = topicInfoHash(TOPIC);
    for (const host of ATTACKERS) {
      const dht = await startDhtAt([bootstrap], host);
      attackers.push(dht);
      await announcePorts(dht, infoHash, Array.from({ length: 40 }, (_, i) => 20_000 + i));
    }
  });

  after(async () => {
    server?.child.kill("SIGTERM");
    await server?.exited;
    await Promise.all(attackers.map(destroyDht));
    await Promise.all(nodes.map((n) => n.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("finds and verifies the real server, printing and dialing a bounded number of addresses", async () => {
    const { code, out } = await run(["peers", "--topic", TOPIC, "--bootstrap", bootstrap, "--wait", "8"], undefined, 90_000).exited;
    assert.equal(code, 0, out);
    assert.match(out, /127\.0\.0\.3:\d+: verified ToolDb server/);
    const listed = out.split("\n").filter((l) => l.startsWith("DHT says:")).length;
    assert.ok(listed <= 100, `${listed} addresses printed`);
    const tried = out.split("\n").filter((l) => /^127\.0\.\d+\.\d+:\d+: /.test(l)).length;
    assert.ok(tried <= 256, `${tried} addresses dialed`);
    assert.match(out, /(\d+) of (\d+) verified/);
  });
});
