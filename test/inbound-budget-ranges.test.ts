/**
 * Which link the receive budget closes when links together hold too much of
 * unfinished frames (src/network/inbound-budget.ts). Closing the link that
 * holds the most let an attacker pick the victim: many links of one network
 * each holding a little less than an honest link's large frame in progress,
 * and the honest link was the one closed. The largest link of the address
 * site (IPv4 /24, IPv6 /48) holding the most goes now.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb, type ToolDbOptions } from "../src/index.js";
import { InboundBudget, type InboundHolder } from "../src/network/inbound-budget.js";
import { TcpNetwork } from "../src/network/tcp-network.js";
import { FrameKind, encodeFrame } from "../src/network/stream-framing.js";
import { signRecord } from "../src/node/record-signer.js";
import { testAuthor } from "./helpers/signed-records.js";
import { RawTcpLink, closedAfterEachTest } from "./helpers/raw-peer.js";
import { waitUntil } from "./helpers/nodes.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const T = 15_000;
const KIB = 1024;
const unhandled = collectUnhandledRejections();

class Holder implements InboundHolder {
  closed = false;
  constructor(readonly info: { remoteHost?: string }) {}
  overBudget(): void {
    this.closed = true;
  }
}

describe("the receive budget by address range", () => {
  it("closes the largest link of the site holding the most, not the largest link; exempt and unaddressed links stand alone; an IPv6 /48 is one site", () => {
    const budget = new InboundBudget(4000 * KIB, ["127.0.0.1"]);
    const honest = new Holder({ remoteHost: "198.51.100.7" });
    budget.update(honest, 900 * KIB);
    const attackers = Array.from({ length: 6 }, (_, i) => new Holder({ remoteHost: `203.0.113.${i + 1}` }));
    for (const a of attackers) budget.update(a, 600 * KIB);
    // 900 + 6 × 600 = 4,500 KiB: over by 500. The attackers' /24 holds 3,600 KiB: one of its links goes.
    assert.equal(honest.closed, false, "the honest link was closed");
    assert.equal(attackers.filter((a) => a.closed).length, 1);
    assert.equal(budget.bytes, 3900 * KIB);
    // Exempt (the operator's own host) and unaddressed links are groups of one each.
    const local = [new Holder({ remoteHost: "127.0.0.1" }), new Holder({ remoteHost: "127.0.0.1" }), new Holder({})];
    for (const l of local) budget.update(l, 700 * KIB);
    // Over by 2,000: the /24 (3,000 left) loses links until it is no longer the heaviest group or the total fits.
    assert.equal(honest.closed, false);
    assert.ok(budget.bytes <= 4000 * KIB, `${budget.bytes} bytes held`);
    assert.equal(local.filter((l) => l.closed).length, 0, "a group of one 700 KiB link went before the attackers' range");
    // IPv6: one /48 is one site, however many /64s its links come from.
    const v6 = new InboundBudget(1000 * KIB);
    const lone = new Holder({ remoteHost: "2001:db8:1::5" });
    v6.update(lone, 400 * KIB);
    const spread = Array.from({ length: 4 }, (_, i) => new Holder({ remoteHost: `2001:db8:2:${i + 1}::7` }));
    for (const h of spread) v6.update(h, 200 * KIB);
    assert.equal(lone.closed, false, "a link of another site went for four /64s of one /48");
    assert.equal(spread.filter((h) => h.closed).length, 1);
    // A link that completes its frame holds nothing: its range is no longer charged for it.
    budget.update(honest, 0);
    for (const a of attackers) budget.update(a, 0);
    for (const l of local) budget.update(l, 0);
    assert.equal(budget.bytes, 0);
  });

  const nodes = closedAfterEachTest<ToolDb>(T);

  it("links from one network each holding less than an honest link's large frame in progress do not get the honest link closed; its put is stored", { timeout: 60_000 }, async () => {
    const topic = `inbound-ranges-${process.pid}`;
    const opts: Partial<ToolDbOptions> = { networkAdapter: TcpNetwork, server: true, host: "127.0.0.1", port: 0, topic, limits: { maxReceiveBuffered: 4 * 1024 * KIB, exemptIps: [] } };
    const srv = new ToolDb(opts);
    nodes.push(srv);
    await srv.ready;
    const port = (srv.network as TcpNetwork).port!;
    await srv.putData("kept", "intact");

    // The honest writer (another network: 127.0.1.0/24) sends a 900 KiB put, all but its last bytes.
    const record = await signRecord(await testAuthor(), "large", "x".repeat(900 * KIB), Date.now(), 0, false);
    const frame = encodeFrame(FrameKind.MESSAGE, Buffer.from(JSON.stringify({ type: "put", id: "large-put", to: [], data: record, ack: true })));
    const honest = await RawTcpLink.open(port, { topic, from: "127.0.1.1" });
    await honest.provenHandshake();
    honest.sendRaw(frame.subarray(0, frame.length - 100));
    await waitUntil(() => srv.network.peers.length === 1 && inboundBytes(srv) > 900 * KIB, T, "the server to hold the honest frame in progress");

    // Eight links of 127.0.0.0/24, 600 KiB each: 4.8 MiB with the honest link's 0.9, past the 4 MiB budget.
    const attackers: RawTcpLink[] = [];
    for (let i = 0; i < 8; i++) {
      const link = await RawTcpLink.open(port, { topic, from: `127.0.0.${i + 2}` });
      await link.provenHandshake();
      const header = Buffer.alloc(5);
      header.writeUInt32BE(600 * KIB + 100 + 1, 0);
      header[4] = FrameKind.MESSAGE;
      link.sendRaw(Buffer.concat([header, Buffer.alloc(600 * KIB, 0x20)]));
      attackers.push(link);
    }
    await waitUntil(() => attackers.filter((a) => a.isClosed).length >= 1, T, "an attacking link to be closed");
    assert.equal(honest.isClosed, false, "the honest link was closed for the attackers' bytes");
    const acked = honest.next((f) => f.type === "putAck" && Array.isArray(f.stored) && f.stored.includes(record.h), T);
    honest.sendRaw(frame.subarray(frame.length - 100));
    await acked;
    assert.equal(((await srv.records.get("large")) as { v?: string } | undefined)?.v?.length, 900 * KIB);
    assert.equal(await srv.getData("kept"), "intact");
    for (const a of attackers) a.terminate();
    honest.terminate();
    assert.deepEqual(unhandled, []);
  });
});

function inboundBytes(db: ToolDb): number {
  return (db.network as unknown as { inbound: InboundBudget }).inbound.bytes;
}
