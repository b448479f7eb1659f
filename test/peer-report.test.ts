/**
 * What `serve` prints about DHT finds and given-up dials: a dead server that
 * stays announced is found by every lookup and given up on after every dial
 * (before: two lines a lookup, for as long as its announce lived).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LINES_PER_MINUTE, PeerReport } from "../src/cli/peer-report.js";

describe("serve's report of DHT peers", { timeout: 10_000 }, () => {
  it("prints each found address once and each give-up once until the address connects again", () => {
    const lines: string[] = [];
    const report = new PeerReport((line) => lines.push(line));
    const dead = { host: "127.0.0.9", port: 9001 };
    for (let lookup = 0; lookup < 5; lookup++) {
      report.peerFound(dead);
      report.dialFailed({ ...dead, reason: "ECONNREFUSED", final: false });
      report.dialFailed({ ...dead, reason: "ECONNREFUSED", final: true });
    }
    assert.deepEqual(lines, ["DHT peer found: 127.0.0.9:9001", "gave up on 127.0.0.9:9001: ECONNREFUSED (not printed again for this address until it connects)"]);
    report.peerConnected({ peerId: "abc", isServer: true, ...dead });
    report.dialFailed({ ...dead, reason: "", final: true });
    assert.equal(lines.length, 4);
    assert.equal(lines[2], "peer connected: abc (server 127.0.0.9:9001)");
    assert.equal(lines[3], "gave up on 127.0.0.9:9001: no reason given (not printed again for this address until it connects)");
    assert.ok(report.found.has("127.0.0.9:9001"), "the status command still sees it as found on the DHT");
  });

  it("stays bounded under a flood of bogus announces: at most LINES_PER_MINUTE lines a minute, the rest summed up", () => {
    const lines: string[] = [];
    let now = 0;
    const report = new PeerReport((line) => lines.push(line), () => now);
    const flood = (from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        const peer = { host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 9000 };
        report.peerFound(peer);
        report.dialFailed({ ...peer, reason: "timeout", final: true });
      }
    };
    flood(0, 20_000);
    assert.equal(lines.length, LINES_PER_MINUTE);
    assert.ok(report.found.size <= 4096, `found holds ${report.found.size}`);
    now += 60_000;
    flood(20_000, 1);
    assert.equal(lines[LINES_PER_MINUTE], `(not printed since: ${20_000 - 15} more DHT peers found, ${20_000 - 15} more given up on)`);
    assert.equal(lines.length, LINES_PER_MINUTE + 3, "a new minute prints again");
    for (let i = 0; i < 40; i++) report.peerFound({ host: "10.200.0.1", port: 1000 + i });
    report.summary(); // serve stopping
    assert.equal(lines.at(-1), "(not printed since: 12 more DHT peers found, 0 more given up on)");
  });
});
