/**
 * The ToolDb guide's samples (../shared/guide/nodejs-dht-discovery.md,
 * "Server Setup" and "Client Setup") pass what discovery-channel announces
 * straight to `db.network.connectTo(peer.host, peer.port)`, from its 'peer'
 * handler, with no catch. discovery-channel's mDNS part (dns-discovery, on
 * by default) hands on the peers of any stranger's TXT answer on the LAN,
 * port 0 included: `connectTo` must refuse such an address without
 * throwing, or one multicast packet ends the guide's process.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { it } from "node:test";
import { ErrorCode, ToolDb } from "../src/index.js";
import type { RefusalEvent } from "../src/network/network-host.js";

const require = createRequire(import.meta.url);

interface DnsDiscovery {
  on(event: "peer", listener: (id: string, peer: { host: string; port: number }) => void): void;
  /** What its multicast 'response' handler runs for each answer of a packet. */
  _onanswer(answer: unknown, port: number, host: string, socket: unknown): void;
  destroy(): void;
}

it("a stranger's mDNS answer announcing port 0 is refused, not thrown out of the guide's 'peer' handler", { timeout: 20_000 }, async () => {
  const db = new ToolDb({ topic: "guide-announced-peers" });
  await db.ready;
  const refusals: RefusalEvent[] = [];
  db.on("refused", (e) => refusals.push(e));
  const createDns = require("dns-discovery") as (opts: object) => DnsDiscovery;
  const dns = createDns({ multicast: false, server: [] });
  dns.on("peer", (_id, peer) => db.network.connectTo(peer.host, peer.port)); // as in the guide
  const id = "a".repeat(40);
  const compact = Buffer.from([192, 168, 1, 50, 0, 0]); // 192.168.1.50, port 0
  const answer = { type: "TXT", name: `${id}.dns-discovery.local`, data: [Buffer.from(`peers=${compact.toString("base64")}`)] };
  try {
    assert.doesNotThrow(() => dns._onanswer(answer, 5353, "192.168.1.50", null));
    assert.equal(refusals.length, 1, "the address is refused once");
    assert.equal(refusals[0]!.code, ErrorCode.INVALID_ARGUMENT);
    assert.match(refusals[0]!.reason, /connectTo: port must be a whole number from 1 to 65535, got number 0/);
    assert.deepEqual(db.network.dialTargets(), [], "nothing is dialed");
  } finally {
    dns.destroy();
    await db.close();
  }
});
