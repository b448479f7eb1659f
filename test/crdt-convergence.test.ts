/**
 * CRDT convergence, pure in-memory: for each type, 1,000+ random schedules
 * (fixed seed) in which 3 replicas make concurrent changes, exchange some of
 * them along the way, and finally receive everything in different orders and
 * groupings. Every replica, and a fresh one built from a shuffled change
 * list, must show the same value. Plus single-writer histories checked
 * against tool-db 2.6.6's own CRDT classes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import t from "tool-db";
import { BaseCrdt, CounterCrdt, ListCrdt, MapCrdt } from "../src/crdt/index.js";
import { seededRandom } from "../src/base/random.js";

const SCHEDULES = 1000;
const AUTHORS = ["alice", "bob", "carol"];

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

function shuffle<T>(random: () => number, xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Random chunks of a shuffled list: changes arrive in any order and grouping. */
function deliveries<T>(random: () => number, changes: T[]): T[][] {
  const shuffled = shuffle(random, changes);
  const chunks: T[][] = [];
  while (shuffled.length > 0) chunks.push(shuffled.splice(0, 1 + Math.floor(random() * 4)));
  return chunks;
}

function converge<C extends BaseCrdt>(seed: number, make: (author: string) => C, act: (random: () => number, crdt: C) => void): void {
  const random = seededRandom(seed);
  const replicas = AUTHORS.map(make);
  const steps = 5 + Math.floor(random() * 20);
  for (let s = 0; s < steps; s++) {
    const r = random();
    if (r < 0.75) act(random, pick(random, replicas));
    else {
      // A partial exchange on the way: one replica hears some of another's changes.
      const from = pick(random, replicas);
      const to = pick(random, replicas);
      const some = shuffle(random, from.getChanges()).slice(0, Math.floor(random() * (from.size + 1)));
      to.mergeChanges(some);
    }
  }
  const all = replicas.flatMap((r) => r.getChanges());
  for (const replica of replicas) for (const chunk of deliveries(random, all)) replica.mergeChanges(chunk);
  const fresh = make("dave");
  fresh.mergeChanges(shuffle(random, all));
  const expected = replicas[0]!.value;
  for (const other of [...replicas.slice(1), fresh]) {
    assert.deepEqual(other.value, expected, `seed ${seed}: replicas diverge`);
    assert.deepEqual(other.getChanges(), replicas[0]!.getChanges(), `seed ${seed}: change lists differ`);
  }
}

describe("CRDT convergence under concurrent changes (fixed seed, 3 replicas)", () => {
  it(`MapCrdt: ${SCHEDULES} schedules`, () => {
    const keys = ["a", "b", "c", "__proto__"];
    for (let seed = 1; seed <= SCHEDULES; seed++) {
      converge(seed, (a) => new MapCrdt<number>(a), (random, map) => {
        if (random() < 0.7) map.SET(pick(random, keys), Math.floor(random() * 100));
        else map.DEL(pick(random, keys));
      });
    }
  });

  it(`ListCrdt: ${SCHEDULES} schedules of inserts, pushes, deletes and moves`, () => {
    for (let seed = 1; seed <= SCHEDULES; seed++) {
      converge(seed, (a) => new ListCrdt<string>(a), (random, list) => {
        const length = list.value.length;
        const r = random();
        if (r < 0.35 || length === 0) list.PUSH(`v${Math.floor(random() * 1000)}`);
        else if (r < 0.65) list.INS(`v${Math.floor(random() * 1000)}`, Math.floor(random() * (length + 1)));
        else if (r < 0.85) list.DEL(Math.floor(random() * length));
        else if (length > 1) list.MOVE(Math.floor(random() * length), Math.floor(random() * length));
      });
    }
  });

  it(`CounterCrdt: ${SCHEDULES} schedules`, () => {
    for (let seed = 1; seed <= SCHEDULES; seed++) {
      converge(seed, (a) => new CounterCrdt(a), (random, counter) => {
        const v = Math.floor(random() * 10) + 0.5;
        if (random() < 0.6) counter.ADD(v);
        else counter.SUB(v);
      });
    }
  });
});

describe("CRDT values match tool-db 2.6.6 for one writer", () => {
  it("map, list and counter histories give 2.6.6's values, and 2.6.6 reads our change lists the same", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = seededRandom(seed);
      const ourMap = new MapCrdt<number>("alice");
      const ourList = new ListCrdt<number>("alice");
      const ourCounter = new CounterCrdt("alice");
      const theirMap = new t.MapCrdt("alice");
      const theirList = new t.ListCrdt("alice");
      const theirCounter = new t.CounterCrdt("alice");
      for (let s = 0; s < 15; s++) {
        const key = pick(random, ["x", "y", "z"]);
        const n = Math.floor(random() * 100);
        if (random() < 0.7) {
          ourMap.SET(key, n);
          theirMap.SET(key, n);
        } else {
          ourMap.DEL(key);
          theirMap.DEL(key);
        }
        const length = ourList.value.length;
        const r = random();
        if (r < 0.4 || length === 0) {
          ourList.PUSH(n);
          theirList.PUSH(n);
        } else if (r < 0.7) {
          const at = Math.floor(random() * length); // 2.6.6's INS cannot append (index === length throws)
          ourList.INS(n, at);
          theirList.INS(n, at);
        } else {
          const at = Math.floor(random() * length);
          ourList.DEL(at);
          theirList.DEL(at);
        }
        if (random() < 0.5) {
          ourCounter.ADD(n);
          theirCounter.ADD(n);
        } else {
          ourCounter.SUB(n);
          theirCounter.SUB(n);
        }
      }
      assert.deepEqual(ourMap.value, theirMap.value, `seed ${seed}: map`);
      assert.deepEqual(ourList.value, theirList.value, `seed ${seed}: list`);
      assert.equal(ourCounter.value, theirCounter.value, `seed ${seed}: counter`);
      // Each side reads the other's change list to the same value.
      assert.deepEqual(new t.MapCrdt("bob", structuredClone(ourMap.getChanges())).value, ourMap.value);
      assert.deepEqual(new t.ListCrdt("bob", structuredClone(ourList.getChanges()) as never).value, ourList.value);
      assert.deepEqual(new ListCrdt("bob", structuredClone(theirList.getChanges())).value, theirList.value);
      assert.deepEqual(new MapCrdt("bob", structuredClone(theirMap.getChanges())).value, theirMap.value);
      assert.equal(new CounterCrdt("bob", structuredClone(theirCounter.getChanges())).value, theirCounter.value);
    }
  });

  it("list: concurrent inserts keep their places; a writer that saw another's elements inserts where it meant to", () => {
    const zed = new ListCrdt<string>("zed");
    for (const v of ["a", "b", "c"]) zed.PUSH(v);
    const amy = new ListCrdt<string>("amy", zed.getChanges());
    zed.INS("x", 1);
    amy.INS("y", 2);
    zed.mergeChanges(amy.getChanges());
    amy.mergeChanges(zed.getChanges());
    assert.deepEqual(zed.value, ["a", "x", "b", "y", "c"]);
    assert.deepEqual(amy.value, zed.value);
    // "amy" < "zed": 2.6.6 applies amy's insert before zed's elements exist and puts it at the front.
    amy.INS("after-a", 1);
    assert.deepEqual(amy.value, ["a", "after-a", "x", "b", "y", "c"]);
    assert.deepEqual(new ListCrdt("bob", amy.getChanges()).value, amy.value);
    assert.notDeepEqual(new t.ListCrdt("bob", structuredClone(amy.getChanges()) as never).value, amy.value, "2.6.6 misplaces it");
  });

  it("a change list over the limit is refused with a reason; malformed changes are skipped", () => {
    const map = new MapCrdt("alice");
    map.mergeChanges([{ t: "SET", k: "ok", a: "bob", v: 1, i: 1 }, { t: "SET", k: "bad", a: "bob", i: 1 } as never, null as never, { t: "XX" } as never]);
    assert.deepEqual(map.value, { ok: 1 });
    const huge = Array.from({ length: 20_001 }, (_, i) => ({ t: "ADD" as const, v: 1, a: "bob", i }));
    assert.throws(() => new CounterCrdt("alice", huge), /at most 20000 changes/);
    assert.throws(() => new ListCrdt("alice").DEL(0), /no element at index 0/);
  });
});
