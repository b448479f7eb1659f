/** De-duplication table and option handling (no network). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isToolDbError } from "../../src/base/errors.js";
import { jittered, parseHostPort, resolveOptions } from "../../src/discovery/options.js";
import { PeerTable } from "../../src/discovery/peer-table.js";

describe("PeerTable", () => {
  it("reports a peer once until forgotten", () => {
    const t = new PeerTable(1000);
    assert.equal(t.see({ host: "10.0.0.1", port: 80 }, 0), true);
    assert.equal(t.see({ host: "10.0.0.1", port: 80 }, 1), false);
    assert.equal(t.see({ host: "10.0.0.1", port: 81 }, 1), true);
    assert.equal(t.forget("10.0.0.1", 80), true);
    assert.equal(t.forget("10.0.0.1", 80), false);
    assert.equal(t.see({ host: "10.0.0.1", port: 80 }, 2), true);
  });

  it("drops entries not re-seen within the TTL, so a returning peer is reported again", () => {
    const t = new PeerTable(1000);
    t.see({ host: "10.0.0.1", port: 1 }, 0);
    t.see({ host: "10.0.0.2", port: 2 }, 0);
    t.see({ host: "10.0.0.2", port: 2 }, 900); // re-seen: kept
    t.expire(1500);
    assert.deepEqual(t.list(), [{ host: "10.0.0.2", port: 2 }]);
    assert.equal(t.see({ host: "10.0.0.1", port: 1 }, 1600), true);
  });

  it("does not count itself, and is bounded", () => {
    const t = new PeerTable(1000, 3);
    t.see({ host: "127.0.0.2", port: 9000 }, 0, true);
    t.see({ host: "10.0.0.1", port: 1 }, 0);
    assert.equal(t.size, 1);
    assert.deepEqual(t.list(), [{ host: "10.0.0.1", port: 1 }]);
    t.see({ host: "10.0.0.2", port: 1 }, 0);
    assert.equal(t.see({ host: "10.0.0.3", port: 1 }, 0), false, "full");
    t.expire(5000);
    assert.equal(t.size, 0);
  });
});

describe("options", () => {
  it("has the documented defaults", () => {
    const o = resolveOptions();
    assert.equal(o.bootstrap, undefined);
    assert.equal(o.host, "0.0.0.0");
    assert.equal(o.port, 0);
    assert.equal(o.timeout, 1000);
    assert.ok(o.fastInterval <= 1000);
    assert.ok(o.slowInterval >= 30_000 && o.slowInterval <= 60_000);
    assert.ok(o.announceInterval < o.maxAge / 2, "re-announce well before stored records expire");
  });

  it("takes a discovery-channel style { dht: { bootstrap } } so it never falls back to public routers", () => {
    const o = resolveOptions({ dht: { bootstrap: ["127.0.0.1:6881"], timeout: 300 }, dns: false });
    assert.deepEqual(o.bootstrap, ["127.0.0.1:6881"]);
    assert.equal(o.timeout, 300);
    assert.deepEqual(resolveOptions({ dht: { bootstrap: ["127.0.0.1:1"] }, bootstrap: false }).bootstrap, false);
    assert.throws(
      () => resolveOptions({ dht: false as never }),
      (err) => isToolDbError(err, "INVALID_ARGUMENT"),
    );
  });

  it("parses host:port and jitters within bounds", () => {
    assert.deepEqual(parseHostPort("127.0.0.1:6881"), { host: "127.0.0.1", port: 6881 });
    assert.deepEqual(parseHostPort("router.example:1"), { host: "router.example", port: 1 });
    for (const bad of ["127.0.0.1", ":1", "h:0", "h:70000", "::1:5", 5]) assert.equal(parseHostPort(bad), null);
    assert.equal(jittered(1000, 0.1, () => 0), 900);
    assert.equal(jittered(1000, 0.1, () => 1), 1100);
    assert.equal(jittered(1000, 0.1, () => 0.5), 1000);
  });
});
