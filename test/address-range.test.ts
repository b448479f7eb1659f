/** The ranges per-range limits group remote addresses by, and the coarser sites of the proven-identity memory. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressRange, addressSite } from "../src/limits/address-range.js";

describe("address ranges and sites", { timeout: 5000 }, () => {
  it("an IPv4 address's range and site are its /24, an IPv4-mapped one's too", () => {
    assert.equal(addressRange("203.0.113.7"), "203.0.113.0/24");
    assert.equal(addressSite("203.0.113.7"), "203.0.113.0/24");
    assert.equal(addressSite("::ffff:203.0.113.7"), "203.0.113.0/24");
  });

  it("an IPv6 address's range is its /64, its site its /48, however it is written", () => {
    assert.equal(addressRange("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    assert.equal(addressSite("2001:db8:1:2:3:4:5:6"), "2001:db8:1::/48");
    assert.equal(addressSite("2001:0db8:0001:ffff::1"), "2001:db8:1::/48");
    assert.equal(addressSite("2001:db8::1"), "2001:db8:0::/48");
    assert.equal(addressSite("fe80::1%eth0"), "fe80:0:0::/48");
    // Two /64s of one /48: different ranges, one site.
    assert.notEqual(addressRange("2001:db8:1:a::1"), addressRange("2001:db8:1:b::1"));
    assert.equal(addressSite("2001:db8:1:a::1"), addressSite("2001:db8:1:b::1"));
  });

  it("something that is not an IP has neither", () => {
    for (const bad of ["", "localhost", "1.2.3.256", "1:2:3", "1::2::3", "g::1"]) {
      assert.equal(addressRange(bad), undefined, bad);
      assert.equal(addressSite(bad), undefined, bad);
    }
  });
});
