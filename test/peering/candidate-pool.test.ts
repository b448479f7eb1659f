/** The order in which candidate addresses are dialed, and their penalties: pure, on a manual clock. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CandidatePool, Tier } from "../../src/peering/candidate-pool.js";
import { ManualClock } from "../helpers/manual-clock.js";

function pool(clock: ManualClock, random: () => number = Math.random, capacity = 100): CandidatePool {
  return new CandidatePool({ capacity, penaltyMs: 1000, maxPenaltyMs: 8000, random, now: () => clock.now() });
}

const all = () => true;

describe("candidate pool", { timeout: 10_000 }, () => {
  it("dials by tier: verified, then listed by a proven server, then listed by others, then strangers", () => {
    const p = pool(new ManualClock());
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Found);
    p.offer({ host: "10.0.1.1", port: 1 }, Tier.Gossip);
    p.offer({ host: "10.0.2.1", port: 1 }, Tier.ProvenGossip);
    p.offer({ host: "10.0.3.1", port: 1 }, Tier.Verified);
    const order: string[] = [];
    const taken = new Set<string>();
    for (let c = p.pick(all); c; c = p.pick((x) => !taken.has(x.key))) {
      order.push(c.host);
      taken.add(c.key);
    }
    assert.deepEqual(order, ["10.0.3.1", "10.0.2.1", "10.0.1.1", "10.0.0.1"]);
    // A stranger later listed by a proven server moves up.
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.ProvenGossip, "its-address");
    assert.equal(p.get("10.0.0.1", 1)?.tier, Tier.ProvenGossip);
  });

  it("a thousand announces from one network weigh as much as one server on another", () => {
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const p = pool(new ManualClock(), random, 2000);
    for (let port = 1; port <= 1000; port++) p.offer({ host: "198.51.100.7", port }, Tier.Found);
    p.offer({ host: "203.0.113.5", port: 9000 }, Tier.Found);
    let real = 0;
    for (let i = 0; i < 1000; i++) if (p.pick(all)?.host === "203.0.113.5") real++;
    assert.ok(real > 400 && real < 600, `the real server was picked ${real} times in 1000`);
  });

  it("a failed address waits out a growing penalty, then comes after every untried one", () => {
    const clock = new ManualClock();
    const p = pool(clock, () => 0);
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Found);
    assert.equal(p.penalise("10.0.0.1", 1), 1000);
    assert.equal(p.pick(all), undefined);
    assert.equal(p.nextRelease(), 1000);
    clock.advance(1000);
    p.offer({ host: "10.0.0.2", port: 1 }, Tier.Found);
    assert.equal(p.pick(all)?.host, "10.0.0.2", "the untried address first");
    assert.equal(p.pick((c) => c.host !== "10.0.0.2")?.host, "10.0.0.1");
    assert.equal(p.penalise("10.0.0.1", 1), 2000);
    assert.equal(p.penalise("10.0.0.1", 1), 4000);
    assert.equal(p.penalise("10.0.0.1", 1), 8000);
    assert.equal(p.penalise("10.0.0.1", 1), 8000, "capped");
    p.verified("10.0.0.1", 1, "addr");
    assert.equal(p.get("10.0.0.1", 1)?.until, 0);
    assert.equal(p.pick(all)?.host, "10.0.0.1", "verified now");
    p.exclude("10.0.0.1", 1);
    assert.equal(p.nextRelease(), undefined, "excluded for good, no wake-up");
  });

  it("past capacity, strangers make room among strangers only, penalised ones first", () => {
    const p = pool(new ManualClock(), () => 0, 3);
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Verified);
    p.offer({ host: "10.0.0.2", port: 1 }, Tier.Found);
    p.offer({ host: "10.0.0.3", port: 1 }, Tier.Found);
    p.penalise("10.0.0.3", 1);
    assert.equal(p.offer({ host: "10.0.0.4", port: 1 }, Tier.Found), true);
    assert.equal(p.get("10.0.0.3", 1), undefined, "the penalised stranger went");
    assert.equal(p.offer({ host: "10.0.0.5", port: 1 }, Tier.Found), true);
    assert.equal(p.get("10.0.0.2", 1), undefined, "then the oldest");
    assert.ok(p.get("10.0.0.1", 1), "a verified server is never pushed out by strangers");
    p.offer({ host: "10.0.0.6", port: 1 }, Tier.Found);
    p.offer({ host: "10.0.0.7", port: 1 }, Tier.Found);
    assert.ok(p.get("10.0.0.1", 1));
    assert.equal(p.size, 3);
  });

  it("an address pushed out of a full pool keeps its penalty when it is offered again (before: it came back untried)", () => {
    const clock = new ManualClock();
    const p = pool(clock, () => 0, 2);
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Found);
    p.penalise("10.0.0.1", 1);
    assert.equal(p.penalise("10.0.0.1", 1), 2000, "failed twice");
    p.offer({ host: "10.0.0.2", port: 1 }, Tier.Found);
    p.offer({ host: "10.0.0.3", port: 1 }, Tier.Found);
    assert.equal(p.get("10.0.0.1", 1), undefined, "pushed out, penalised first");
    // The DHT reports it again (its failed dial made the peering forget it there).
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Found);
    const back = p.get("10.0.0.1", 1)!;
    assert.equal(back.until, 2000, "still waits out its penalty");
    assert.equal(p.pick((c) => c.host === "10.0.0.1"), undefined);
    assert.equal(p.penalise("10.0.0.1", 1), 4000, "and the next failure doubles it");
    p.verified("10.0.0.1", 1, "addr");
    assert.equal(p.get("10.0.0.1", 1)?.until, 0);
  });

  it("the penalty is taken back before the pool makes room (making room could push it out of the memory)", () => {
    const clock = new ManualClock();
    const p = pool(clock, () => 0, 1);
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Found);
    p.penalise("10.0.0.1", 1);
    p.penalise("10.0.0.1", 1);
    for (const host of ["10.0.0.2", "10.0.0.3"]) {
      p.offer({ host, port: 1 }, Tier.Found);
      p.penalise(host, 1);
    }
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Found);
    assert.equal(p.penalise("10.0.0.1", 1), 4000, "its third failure: the two before were remembered");
  });

  it("a failure reported after the address was pushed out still counts", () => {
    const clock = new ManualClock();
    const p = pool(clock, () => 0, 1);
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Found);
    p.penalise("10.0.0.1", 1);
    p.offer({ host: "10.0.0.2", port: 1 }, Tier.Found);
    assert.equal(p.penalise("10.0.0.1", 1), 2000, "counted in the memory of pushed-out addresses");
    p.offer({ host: "10.0.0.1", port: 1 }, Tier.Found);
    assert.equal(p.get("10.0.0.1", 1)?.until, 2000);
  });
});
